"""Bad input to the transaction coordinator and the idempotent produce path, at the
protocol level (kio-encoded raw requests against a real broker process).

EndTxn with no transaction open (except an abort of nothing, which succeeds),
AddPartitionsToTxn/EndTxn/AddOffsetsToTxn with a stale or future epoch (PRODUCER_FENCED for
v2+, INVALID_PRODUCER_EPOCH for older versions), an unknown producer id mapping, unknown
topics/partitions in AddPartitionsToTxn, a transaction timeout above
transaction.max.timeout.ms, and a sequence gap on an idempotent produce: each gets Kafka's
exact error code, the transactional id's state is unchanged by the bad request, and
afterwards the broker still serves other clients without a traceback in its log.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.add_offsets_to_txn.v3.request import AddOffsetsToTxnRequest
from kio.schema.add_partitions_to_txn.v1.request import AddPartitionsToTxnRequest as AddPartitionsV1
from kio.schema.add_partitions_to_txn.v1.request import AddPartitionsToTxnTopic as AddTopicV1
from kio.schema.add_partitions_to_txn.v3.request import AddPartitionsToTxnRequest, AddPartitionsToTxnTopic
from kio.schema.describe_transactions.v0.request import DescribeTransactionsRequest
from kio.schema.end_txn.v1.request import EndTxnRequest as EndTxnV1
from kio.schema.end_txn.v3.request import EndTxnRequest
from kio.schema.errors import ErrorCode
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
from kio.schema.list_transactions.v1.request import ListTransactionsRequest

from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.integration.support import assert_serves, coordinators_ready, create_topic, module_broker, produce_req, unique
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)

MAX_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    for broker in module_broker(tmp_path_factory, {"transaction.max.timeout.ms": str(MAX_TIMEOUT_MS)}):
        coordinators_ready(broker.bootstrap, transactions=True)  # as a client's FindCoordinator would
        yield broker


@pytest.fixture(autouse=True)
def _still_serving(broker: EmbeddedBroker) -> Iterator[None]:
    """After every case: the broker answers normal traffic and logged no traceback."""
    before = len(broker.logs())
    yield
    assert_serves(broker)
    new = broker.logs()[before:]
    assert "Traceback" not in new, new[-4000:]


def td(n: int) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=n)


def init_pid(c: RawClient, tid: str | None, timeout_ms: int = 10_000) -> Any:
    return c.request(InitProducerIdRequest(transactional_id=tid, transaction_timeout=td(timeout_ms),
                                           producer_id=-1, producer_epoch=-1))


def init_ok(c: RawClient, tid: str) -> tuple[int, int]:
    resp = init_pid(c, tid)
    assert resp.error_code == ErrorCode.none
    return int(resp.producer_id), int(resp.producer_epoch)


def add_partitions(c: RawClient, tid: str, pid: int, epoch: int, parts: dict[str, list[int]],
                   version: int = 3) -> dict[tuple[str, int], ErrorCode]:
    req_cls, topic_cls = (AddPartitionsToTxnRequest, AddPartitionsToTxnTopic) if version == 3 else \
        (AddPartitionsV1, AddTopicV1)
    resp = c.request(req_cls(v3_and_below_transactional_id=tid, v3_and_below_producer_id=pid,
                             v3_and_below_producer_epoch=epoch,
                             v3_and_below_topics=tuple(topic_cls(name=t, partitions=tuple(ps))
                                                       for t, ps in parts.items())))
    return {(t.name, r.partition_index): r.partition_error_code
            for t in resp.results_by_topic_v3_and_below for r in t.results_by_partition}


def end_txn(c: RawClient, tid: str, pid: int, epoch: int, commit: bool, version: int = 3) -> ErrorCode:
    cls = EndTxnRequest if version == 3 else EndTxnV1
    return c.request(cls(transactional_id=tid, producer_id=pid, producer_epoch=epoch, committed=commit)).error_code


def describe(c: RawClient, tid: str) -> Any:
    """DescribeTransactions; only used while a transaction is open (see test_describe_transactions
    in tests/e2e/test_transactions_admin.py for the Empty/unknown cases)."""
    state = c.request(DescribeTransactionsRequest(transactional_ids=(tid,))).transaction_states[0]
    assert state.error_code == ErrorCode.none, state
    return state


def state_of(c: RawClient, tid: str) -> str | None:
    """The id's state as ListTransactions reports it (None: not listed)."""
    resp = c.request(ListTransactionsRequest(state_filters=(), producer_id_filters=(), duration_filter=-1))
    assert resp.error_code == ErrorCode.none
    return next((t.transaction_state for t in resp.transaction_states if t.transactional_id == tid), None)


def test_end_txn_without_a_transaction(broker: EmbeddedBroker) -> None:
    tid = unique("tx")
    with RawClient(broker.bootstrap) as c:
        pid, epoch = init_ok(c, tid)
        assert end_txn(c, tid, pid, epoch, commit=True) == ErrorCode.invalid_txn_state
        # aborting nothing succeeds (librdkafka aborts once it has sent an add, even a refused one)
        assert end_txn(c, tid, pid, epoch, commit=False) == ErrorCode.none
        assert state_of(c, tid) == "Empty"
        # after a completed commit, an abort is out of state too (and a repeated commit is fine)
        topic = unique("t")
        create_topic(broker.bootstrap, topic)
        assert add_partitions(c, tid, pid, epoch, {topic: [0]}) == {(topic, 0): ErrorCode.none}
        assert end_txn(c, tid, pid, epoch, commit=True) == ErrorCode.none
        # the markers go to the partition's leader after EndTxn answers (as in Kafka)
        wait_until(lambda: state_of(c, tid) == "CompleteCommit", message="the commit completed")
        assert end_txn(c, tid, pid, epoch, commit=False) == ErrorCode.invalid_txn_state
        assert end_txn(c, tid, pid, epoch, commit=True) == ErrorCode.none


@pytest.mark.parametrize("version,expected", [(3, ErrorCode.producer_fenced), (1, ErrorCode.invalid_producer_epoch)])
def test_wrong_epoch(broker: EmbeddedBroker, version: int, expected: ErrorCode) -> None:
    tid, topic = unique("tx"), unique("t")
    create_topic(broker.bootstrap, topic, partitions=2)
    with RawClient(broker.bootstrap) as c:
        pid, _ = init_ok(c, tid)
        pid2, epoch = init_ok(c, tid)  # a second init bumps the epoch
        assert (pid2, epoch) == (pid, 1)
        for bad in (epoch - 1, epoch + 1):
            assert add_partitions(c, tid, pid, bad, {topic: [0, 1]}, version) == {
                (topic, 0): expected, (topic, 1): expected}
        assert state_of(c, tid) == "Empty"
        # open a transaction at the right epoch; a stale EndTxn must not end it
        assert add_partitions(c, tid, pid, epoch, {topic: [0]}, version) == {(topic, 0): ErrorCode.none}
        assert end_txn(c, tid, pid, epoch - 1, commit=True, version=version) == expected
        assert end_txn(c, tid, pid, epoch + 1, commit=False, version=version) == expected
        state = describe(c, tid)
        assert (state.transaction_state, int(state.producer_epoch)) == ("Ongoing", epoch)
        off = c.request(AddOffsetsToTxnRequest(transactional_id=tid, producer_id=pid, producer_epoch=epoch - 1,
                                               group_id=unique("g")))
        assert off.error_code == ErrorCode.producer_fenced
        assert end_txn(c, tid, pid, epoch, commit=False, version=version) == ErrorCode.none


def test_unknown_producer_id_mapping(broker: EmbeddedBroker) -> None:
    tid, topic = unique("tx"), unique("t")
    create_topic(broker.bootstrap, topic)
    with RawClient(broker.bootstrap) as c:
        # an id the coordinator has never seen
        never = unique("never")
        assert add_partitions(c, never, 1234, 0, {topic: [0]}) == {(topic, 0): ErrorCode.invalid_producer_id_mapping}
        assert end_txn(c, never, 1234, 0, commit=True) == ErrorCode.invalid_producer_id_mapping
        # a known id with another producer id
        pid, epoch = init_ok(c, tid)
        assert add_partitions(c, tid, pid + 1000, epoch, {topic: [0]}) == {
            (topic, 0): ErrorCode.invalid_producer_id_mapping}
        assert end_txn(c, tid, pid + 1000, epoch, commit=False) == ErrorCode.invalid_producer_id_mapping
        off = c.request(AddOffsetsToTxnRequest(transactional_id=tid, producer_id=pid + 1000, producer_epoch=epoch,
                                               group_id=unique("g")))
        assert off.error_code == ErrorCode.invalid_producer_id_mapping
        assert state_of(c, tid) == "Empty"


def test_add_partitions_unknown_topic_or_partition(broker: EmbeddedBroker) -> None:
    tid, topic = unique("tx"), unique("t")
    create_topic(broker.bootstrap, topic, partitions=2)
    missing = unique("missing")
    with RawClient(broker.bootstrap) as c:
        pid, epoch = init_ok(c, tid)
        assert add_partitions(c, tid, pid, epoch, {topic: [0, 1], missing: [0]}) == {
            (topic, 0): ErrorCode.operation_not_attempted, (topic, 1): ErrorCode.operation_not_attempted,
            (missing, 0): ErrorCode.unknown_topic_or_partition}
        assert add_partitions(c, tid, pid, epoch, {topic: [0, 7]}) == {
            (topic, 0): ErrorCode.operation_not_attempted, (topic, 7): ErrorCode.unknown_topic_or_partition}
        # nothing was added: no transaction was opened
        assert state_of(c, tid) == "Empty"
        assert add_partitions(c, tid, pid, epoch, {topic: [1]}) == {(topic, 1): ErrorCode.none}
        assert end_txn(c, tid, pid, epoch, commit=True) == ErrorCode.none


def test_init_producer_id_timeout_out_of_range(broker: EmbeddedBroker) -> None:
    tid = unique("tx")
    with RawClient(broker.bootstrap) as c:
        for bad in (MAX_TIMEOUT_MS + 1, 0):
            resp = init_pid(c, tid, bad)
            assert (resp.error_code, resp.producer_id) == (ErrorCode.invalid_transaction_timeout, -1)
        resp = init_pid(c, tid, MAX_TIMEOUT_MS)
        assert resp.error_code == ErrorCode.none
        # an idempotent (non-transactional) producer has no transaction timeout to check
        assert init_pid(c, None, MAX_TIMEOUT_MS + 1).error_code == ErrorCode.none


def test_empty_transactional_id_is_invalid(broker: EmbeddedBroker) -> None:
    with RawClient(broker.bootstrap) as c:
        assert init_pid(c, "").error_code == ErrorCode.invalid_request
        assert end_txn(c, "", 1, 0, commit=True) == ErrorCode.invalid_request


def test_idempotent_sequence_gap(broker: EmbeddedBroker) -> None:
    topic = unique("t")
    create_topic(broker.bootstrap, topic)
    with RawClient(broker.bootstrap) as c:
        resp = init_pid(c, None)
        pid, epoch = int(resp.producer_id), int(resp.producer_epoch)

        def produce(seq: int, n: int = 2) -> tuple[ErrorCode, int]:
            batch = build_batch([(None, b"v%d" % (seq + i)) for i in range(n)], producer_id=pid,
                                producer_epoch=epoch, base_sequence=seq, timestamp_ms=1_700_000_000_000)
            part = c.request(produce_req(topic, 0, batch)).responses[0].partition_responses[0]
            return part.error_code, int(part.base_offset)

        assert produce(0) == (ErrorCode.none, 0)
        assert produce(5)[0] == ErrorCode.out_of_order_sequence_number  # 2..4 missing
        assert produce(3)[0] == ErrorCode.out_of_order_sequence_number  # 2 missing
        assert produce(2) == (ErrorCode.none, 2)
        assert produce(0) == (ErrorCode.none, 0)  # still a duplicate of the first batch
        assert produce(4) == (ErrorCode.none, 4)
