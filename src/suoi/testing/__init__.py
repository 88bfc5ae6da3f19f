"""An embedded suoi broker for your own tests.

    from suoi.testing import InProcessNode

    with InProcessNode() as node:
        node.create_topic("orders", partitions=3)
        producer = KafkaProducer(bootstrap_servers=node.bootstrap)

`InProcessNode` runs the broker inside the test process (on a background thread, started in
well under a second); `InProcessCluster` several of them as one KRaft quorum;
`EmbeddedBroker` runs it as a subprocess, which a test may kill (`kill()`) and restart on the
same data (`restart()`). With pytest the plugin (installed with suoi) provides the fixtures
`suoi_node` / `suoi_module_node` / `suoi_session_node` (an in-process node per test, module
or session), `suoi_bootstrap` (a fresh node's "host:port"), `suoi_cluster` (three nodes per
module) and `suoi_broker` (an EmbeddedBroker per test). Every node listens on free loopback
ports with its data in a temporary directory.
Without `overrides` a node is a single KRaft node (broker and its own one-voter controller
quorum, no CONTROLLER listener), as Kafka 4's single-node quick start.
"""

from suoi.testing.embedded import EmbeddedBroker, free_port
from suoi.testing.inprocess import InProcessCluster, InProcessNode

__all__ = ["EmbeddedBroker", "InProcessCluster", "InProcessNode", "free_port"]
