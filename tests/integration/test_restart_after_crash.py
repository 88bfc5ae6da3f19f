"""A KRaft combined node (`make run`'s roles: broker,controller, its own single voter) killed
with SIGKILL and started again serves acks=all produces at once. Before, its new controller
gave the dead process's registration a whole session and refused the new incarnation as
DUPLICATE_BROKER_REGISTRATION until broker.session.timeout.ms (9 s) had passed: ~10 s of
nothing after every crash. The restarted broker now names the epoch its predecessor registered
with (recorded in its metadata dir) and replaces that registration; a registration that does
not name the current one's epoch is still refused while it is alive."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from kio.schema.broker_registration.v3.request import BrokerRegistrationRequest, Listener
from kio.schema.errors import ErrorCode

from suoi.cluster.previous_epoch import FILE_NAME
from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker, free_port
from tests.conftest import wait_until
from tests.integration.support import create_topic, kraft_combined_overrides, metadata_req, produce, read_all
from tests.rawclient import RawClient

CLUSTER_ID = "c3VvaS1yZXN0YXJ0LWNyYXNo"
TOPIC = "crash"
#: Well under the old delay (the 9 s session plus a 2 s registration retry) and generous for a
#: loaded 2-core machine: an idle one takes ~1 s from process start to the produce.
BOUND_S = 5.0


def _led(bootstrap: str) -> bool:
    try:
        with RawClient(bootstrap) as c:
            md = c.request(metadata_req(TOPIC, allow_create=False))
    except (OSError, TimeoutError):
        return False
    return bool(md.topics) and md.topics[0].error_code == 0 and md.topics[0].partitions[0].leader_id == 1


def _register(cport: int, previous_broker_epoch: int) -> ErrorCode:
    with RawClient(f"127.0.0.1:{cport}") as c:
        resp = c.request(BrokerRegistrationRequest(
            broker_id=1, cluster_id=CLUSTER_ID, incarnation_id=uuid.uuid4(),
            listeners=(Listener(name="PLAINTEXT", host="127.0.0.1", port=1, security_protocol=0),),
            features=(), rack=None, log_dirs=(), previous_broker_epoch=previous_broker_epoch))
    return ErrorCode(resp.error_code)


def test_a_combined_node_killed_and_restarted_takes_acks_all_at_once(tmp_path: Path) -> None:
    port, cport = free_port(), free_port()
    # Kafka's default session (9 s): the delay this is about. Nothing else shortened.
    broker = EmbeddedBroker(tmp_path / "node", port=port, overrides=kraft_combined_overrides(
        port, cport, **{"cluster.id": CLUSTER_ID}))
    broker.start()
    try:
        create_topic(broker.bootstrap, TOPIC)
        assert produce(broker.bootstrap, TOPIC, 0, build_batch([(None, b"before")])).error_code == 0
        epoch_file = broker.log_dirs[0] / FILE_NAME
        killed_epoch = int(wait_until(lambda: epoch_file.exists() and epoch_file.read_text().strip(),
                                      message="the registration's epoch recorded"))

        broker.kill()
        started = time.monotonic()
        broker.launch()
        wait_until(lambda: _led(broker.bootstrap), timeout=30, message="the restarted node leads the partition")
        answer = produce(broker.bootstrap, TOPIC, 0, build_batch([(None, b"after")]))  # acks=all
        elapsed = time.monotonic() - started
        assert answer.error_code == 0 and answer.base_offset == 1
        assert elapsed < BOUND_S, f"restart after SIGKILL -> acks=all produce took {elapsed:.1f}s"
        assert [value for _, value in read_all(broker.bootstrap, TOPIC)] == [b"before", b"after"]

        assert "duplicate_broker_registration" not in broker.logs()
        wait_until(lambda: int(epoch_file.read_text()) > killed_epoch, message="the new registration's epoch recorded")
        # Safety: the live registration is still guarded. Another incarnation of node 1 that does
        # not name its epoch (none, or the dead process's) is refused while its session lives.
        assert _register(cport, -1) == ErrorCode.duplicate_broker_registration
        assert _register(cport, killed_epoch) == ErrorCode.duplicate_broker_registration
        assert produce(broker.bootstrap, TOPIC, 0, build_batch([(None, b"still")])).error_code == 0
    finally:
        broker.close()
