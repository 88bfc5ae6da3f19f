"""DescribeTransactions, ListTransactions and DescribeProducers at the protocol level
(kio-encoded raw requests) while a real confluent-kafka transactional producer opens,
commits and aborts transactions."""

from __future__ import annotations

from typing import Any

import pytest
from kio.schema.describe_producers.v0.request import DescribeProducersRequest, TopicRequest
from kio.schema.describe_transactions.v0.request import DescribeTransactionsRequest
from kio.schema.errors import ErrorCode
from kio.schema.list_transactions.v1.request import ListTransactionsRequest

from tests.conftest import wait_until
from tests.e2e.helpers import create_topic
from tests.e2e.txn_helpers import txn_producer
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)


def describe_txn(bootstrap: str, *tids: str) -> list[Any]:
    with RawClient(bootstrap) as c:
        return list(c.request(DescribeTransactionsRequest(transactional_ids=tids)).transaction_states)


def list_txns(bootstrap: str, states: tuple[str, ...] = (), pids: tuple[int, ...] = ()) -> Any:
    with RawClient(bootstrap) as c:
        resp = c.request(ListTransactionsRequest(state_filters=states, producer_id_filters=pids, duration_filter=-1))
    assert resp.error_code == ErrorCode.none
    return resp


def describe_producers(bootstrap: str, topic: str, partitions: tuple[int, ...]) -> dict[int, list[Any]]:
    with RawClient(bootstrap) as c:
        resp = c.request(DescribeProducersRequest(topics=(TopicRequest(name=topic, partition_indexes=partitions),)))
    out = {}
    for p in resp.topics[0].partitions:
        assert p.error_code == ErrorCode.none, p
        out[p.partition_index] = list(p.active_producers)
    return out


def test_describe_list_and_producers_through_a_transaction_lifecycle(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=3)
    tid = f"tx-{topic}"
    p = txn_producer(bootstrap, tid, **{"transaction.timeout.ms": 30_000})

    # a committed record on partition 0 first, so the open transaction starts at offset 2
    p.begin_transaction()
    p.produce(topic, b"c", partition=0)
    p.commit_transaction(10)

    p.begin_transaction()
    p.produce(topic, b"x", partition=0)
    p.produce(topic, b"y", partition=2)
    assert p.flush(10) == 0

    [state] = describe_txn(bootstrap, tid)
    assert state.error_code == ErrorCode.none
    assert state.transaction_state == "Ongoing"
    assert state.transaction_timeout.total_seconds() == 30
    assert state.transaction_start_time.timestamp() > 0
    assert [(t.topic, sorted(t.partitions)) for t in state.topics] == [(topic, [0, 2])]
    pid, epoch = int(state.producer_id), int(state.producer_epoch)
    assert pid >= 0 and epoch >= 0

    ongoing = list_txns(bootstrap, states=("Ongoing",))
    assert (tid, pid, "Ongoing") in {(t.transactional_id, int(t.producer_id), t.transaction_state)
                                     for t in ongoing.transaction_states}
    by_pid = list_txns(bootstrap, pids=(pid,))
    assert [(t.transactional_id, t.transaction_state) for t in by_pid.transaction_states] == [(tid, "Ongoing")]
    assert list_txns(bootstrap, states=("NoSuchState",)).unknown_state_filters == ("NoSuchState",)

    producers = describe_producers(bootstrap, topic, (0, 1, 2))
    assert producers[1] == []
    [p0], [p2] = producers[0], producers[2]
    assert (int(p0.producer_id), int(p0.producer_epoch), int(p0.current_txn_start_offset)) == (pid, epoch, 2)
    assert (int(p2.producer_id), int(p2.producer_epoch), int(p2.current_txn_start_offset)) == (pid, epoch, 0)
    assert int(p0.last_sequence) == 1 and int(p2.last_sequence) == 0

    p.commit_transaction(10)
    # the markers go to the partitions' leaders after EndTxn answers (as in Kafka): then complete
    state = wait_until(lambda: (s := describe_txn(bootstrap, tid)[0]).transaction_state == "CompleteCommit" and s,
                       message="the commit completed")
    assert (state.error_code, state.transaction_state, int(state.producer_id)) == (ErrorCode.none, "CompleteCommit", pid)
    assert state.topics == ()
    producers = describe_producers(bootstrap, topic, (0, 2))
    assert int(producers[0][0].current_txn_start_offset) == -1
    assert int(producers[2][0].current_txn_start_offset) == -1
    assert not [t for t in list_txns(bootstrap, states=("Ongoing",)).transaction_states if t.transactional_id == tid]

    p.begin_transaction()
    p.produce(topic, b"z", partition=1)
    assert p.flush(10) == 0
    [p1] = describe_producers(bootstrap, topic, (1,))[1]
    assert int(p1.current_txn_start_offset) == 0
    p.abort_transaction(10)
    state = wait_until(lambda: (s := describe_txn(bootstrap, tid)[0]).transaction_state == "CompleteAbort" and s,
                       message="the abort completed")
    assert (state.transaction_state, int(state.producer_id)) == ("CompleteAbort", pid)
    done = list_txns(bootstrap, states=("CompleteAbort",))
    assert tid in {t.transactional_id for t in done.transaction_states}


def test_describe_transactions_without_a_started_transaction(bootstrap: str, topic: str) -> None:
    """An id that was initialised but never began a transaction is Empty with a start time of
    -1, as Kafka reports it (kio cannot decode a negative time, so a real admin client --
    kafka-python's -- reads it); an unknown id is TRANSACTIONAL_ID_NOT_FOUND."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import TransactionalIdNotFoundError

    tid = f"tx-{topic}"
    txn_producer(bootstrap, tid)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        empty = admin.describe_transactions([tid])[tid]
        assert (empty.state.value, empty.transaction_start_time_ms, empty.topic_partitions) == ("Empty", -1, set())
        with pytest.raises(TransactionalIdNotFoundError):
            admin.describe_transactions([f"unknown-{topic}"])
    finally:
        admin.close()
    assert [(t.transactional_id, t.transaction_state) for t in
            list_txns(bootstrap, pids=(int(empty.producer_id),)).transaction_states] == [(tid, "Empty")]
