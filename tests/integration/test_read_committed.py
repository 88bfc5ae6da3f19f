"""read_committed against a real broker process.

Over the wire: transactional batches produced raw hold the last stable offset at the
first offset of the open transaction (ListOffsets and Fetch with isolation_level=1),
read_uncommitted sees everything, and the LSO survives a SIGKILL.

Markers: no API writes them over the wire yet (WriteTxnMarkers belongs to the
transaction coordinator), so one test writes a partition with commits and aborts
in-process through `PartitionLog.append_control`, then serves that data directory
with a broker and reads it with raw Fetch, confluent-kafka and kafka-python.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest

from suoi.log.config import LogConfig
from suoi.log.manager import LogManager
from suoi.protocol.records import build_batch, iter_batches, iter_records
from suoi.testing import EmbeddedBroker
from tests.e2e.helpers import ck_consume, kp_consume
from tests.integration.support import LATEST, create_topic, fetch_req, list_offsets_req, produce_req, unique
from tests.rawclient import RawClient

READ_COMMITTED = 1


def init_producer(c: RawClient) -> int:
    resp = c.request(InitProducerIdRequest(transactional_id=None, transaction_timeout=datetime.timedelta(seconds=60),
                                           producer_id=-1, producer_epoch=-1))
    assert resp.error_code == ErrorCode.none
    return int(resp.producer_id)


def produce(c: RawClient, topic: str, values: list[bytes], *, pid: int = -1, seq: int = -1,
            transactional: bool = False) -> tuple[ErrorCode, int]:
    batch = build_batch([(None, v) for v in values], producer_id=pid, producer_epoch=0 if pid >= 0 else -1,
                        base_sequence=seq, is_transactional=transactional, timestamp_ms=1_700_000_000_000)
    part = c.request(produce_req(topic, 0, batch)).responses[0].partition_responses[0]
    return part.error_code, int(part.base_offset)


def latest(c: RawClient, topic: str, isolation: int) -> int:
    req = dataclasses.replace(list_offsets_req(topic, 0, LATEST), isolation_level=isolation)
    p = c.request(req).topics[0].partitions[0]
    assert p.error_code == ErrorCode.none
    return int(p.offset)


def fetch(c: RawClient, topic: str, offset: int, isolation: int):  # type: ignore[no-untyped-def]
    p = c.request(dataclasses.replace(fetch_req(topic, 0, offset), isolation_level=isolation)).responses[0].partitions[0]
    assert p.error_code == ErrorCode.none
    return p


def test_open_transaction_holds_the_lso(make_broker: Callable[..., EmbeddedBroker]) -> None:
    broker = make_broker()
    topic = unique("rc")
    create_topic(broker.bootstrap, topic)
    with RawClient(broker.bootstrap) as c:
        pid = init_producer(c)
        assert produce(c, topic, [b"a", b"b"]) == (ErrorCode.none, 0)
        assert produce(c, topic, [b"t0", b"t1"], pid=pid, seq=0, transactional=True) == (ErrorCode.none, 2)
        assert produce(c, topic, [b"c"]) == (ErrorCode.none, 4)
        # a non-transactional write from a producer with an open transaction
        assert produce(c, topic, [b"x"], pid=pid, seq=2)[0] == ErrorCode.invalid_txn_state
        assert produce(c, topic, [b"t2"], pid=pid, seq=2, transactional=True) == (ErrorCode.none, 5)

        assert latest(c, topic, READ_COMMITTED) == 2
        assert latest(c, topic, 0) == 6
        committed = fetch(c, topic, 0, READ_COMMITTED)
        assert (committed.high_watermark, committed.last_stable_offset) == (6, 2)
        assert [r.offset for r in iter_records(committed.records or b"")] == [0, 1]
        assert committed.aborted_transactions == ()
        assert not fetch(c, topic, 2, READ_COMMITTED).records
        everything = fetch(c, topic, 0, 0)
        assert [r.value for r in iter_records(everything.records or b"")] == [b"a", b"b", b"t0", b"t1", b"c", b"t2"]
        assert everything.last_stable_offset == 2 and everything.aborted_transactions is None

    broker.kill()
    broker.start()
    with RawClient(broker.bootstrap) as c:
        assert latest(c, topic, READ_COMMITTED) == 2
        assert [r.offset for r in iter_records(fetch(c, topic, 0, READ_COMMITTED).records or b"")] == [0, 1]
        assert produce(c, topic, [b"y"], pid=pid, seq=3)[0] == ErrorCode.invalid_txn_state


def _write_transactions(log_dir: Path, topic: str) -> None:
    """Offsets: 0-1 committed (pid 1), 2-3 aborted (pid 2), 4 plain, 5 commit marker of 1,
    6 abort marker of 2, 7-8 aborted (pid 3), 9 plain, 10 abort of 3, 11 committed (pid 4), 12 its marker."""
    logs = LogManager([log_dir], LogConfig())
    logs.create_topic(topic, 1)
    log = logs.get_log(topic, 0)
    assert log is not None

    def data(pid: int, *values: bytes) -> None:
        log.append(build_batch([(None, v) for v in values], producer_id=pid, producer_epoch=0, base_sequence=0,
                               is_transactional=True, timestamp_ms=1_700_000_000_000))

    data(1, b"c1-0", b"c1-1")
    data(2, b"a2-0", b"a2-1")
    log.append(build_batch([(None, b"plain-4")], timestamp_ms=1_700_000_000_000))
    log.append_control(1, 0, True, 0)
    log.append_control(2, 0, False, 0)
    data(3, b"a3-0", b"a3-1")
    log.append(build_batch([(None, b"plain-9")], timestamp_ms=1_700_000_000_000))
    log.append_control(3, 0, False, 0)
    data(4, b"c4-0")
    log.append_control(4, 0, True, 0)
    assert log.log_end_offset == 13 and log.last_stable_offset == 13
    logs.close()


COMMITTED = [b"c1-0", b"c1-1", b"plain-4", b"plain-9", b"c4-0"]
ALL_DATA = [b"c1-0", b"c1-1", b"a2-0", b"a2-1", b"plain-4", b"a3-0", b"a3-1", b"plain-9", b"c4-0"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, str]]:
    topic = "txn-markers"
    _write_transactions(tmp_path / "data", topic)
    broker = EmbeddedBroker(tmp_path).start()
    yield broker, topic
    broker.stop()


def test_fetch_lists_aborted_transactions(served: tuple[EmbeddedBroker, str]) -> None:
    broker, topic = served
    with RawClient(broker.bootstrap) as c:
        p = fetch(c, topic, 0, READ_COMMITTED)
        assert (p.high_watermark, p.last_stable_offset) == (13, 13)
        assert sorted((int(a.producer_id), int(a.first_offset)) for a in p.aborted_transactions) == [(2, 2), (3, 7)]
        controls = [h.base_offset for _, h in iter_batches(p.records) if h.is_control]
        assert controls == [5, 6, 10, 12]
        later = fetch(c, topic, 9, READ_COMMITTED)
        assert [(int(a.producer_id), int(a.first_offset)) for a in later.aborted_transactions] == [(3, 7)]
        assert fetch(c, topic, 11, READ_COMMITTED).aborted_transactions == ()
        assert latest(c, topic, READ_COMMITTED) == 13


def test_real_consumers_skip_markers_and_aborted_records(served: tuple[EmbeddedBroker, str]) -> None:
    broker, topic = served
    ck = ck_consume(broker.bootstrap, topic, [0], len(COMMITTED), conf={"isolation.level": "read_committed"})
    assert [r.value for r in ck] == COMMITTED
    ck_all = ck_consume(broker.bootstrap, topic, [0], len(ALL_DATA), conf={"isolation.level": "read_uncommitted"})
    assert [r.value for r in ck_all] == ALL_DATA
    kp = kp_consume(broker.bootstrap, topic, [0], len(COMMITTED), isolation_level="read_committed")
    assert [r.value for r in kp] == COMMITTED
    kp_all = kp_consume(broker.bootstrap, topic, [0], len(ALL_DATA), isolation_level="read_uncommitted")
    assert [r.value for r in kp_all] == ALL_DATA
