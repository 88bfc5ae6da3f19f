"""An embedded suoi broker for your own tests.

    from suoi.testing import EmbeddedBroker

    with EmbeddedBroker() as broker:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)

With pytest the plugin (installed with suoi) provides fixtures `suoi_broker` (an
EmbeddedBroker per test) and `suoi_bootstrap` (its "host:port"). The broker runs as a
subprocess on a free loopback port with its data in a temporary directory, so a test
may kill it (`kill()`), restart it on the same data (`restart()`), and never shares
state with another test. Without `overrides` it is a single KRaft node (broker and its own
one-voter controller quorum, no CONTROLLER listener), as Kafka 4's single-node quick start.
"""

from suoi.testing.embedded import EmbeddedBroker, free_port

__all__ = ["EmbeddedBroker", "free_port"]
