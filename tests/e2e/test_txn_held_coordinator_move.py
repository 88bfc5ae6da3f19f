"""A transaction request held by the coordinator (`txn_coordinator.CONCURRENT_HOLD_S`: refused
CONCURRENT_TRANSACTIONS while the id's markers are written, run again once they are) whose
transactional id moves to another coordinator meanwhile: its `__transaction_state` partition's
leadership is taken by a preferred election while the markers cannot be written (the only replica
of a partition of the transaction is frozen). The held request is answered NOT_COORDINATOR as
soon as the coordinator resigns - not after the hold's full second, not never - and the clients
carry on at the new coordinator: the raw client's next add and commit, then a confluent-kafka
transactional producer of the same id, whose transaction read_committed consumers see."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode

from suoi.coordinator.txn import TRANSACTION_STATE_TOPIC, txn_partition_for
from suoi.coordinator.txn_coordinator import CONCURRENT_HOLD_S
from tests.conftest import wait_until
from tests.e2e.test_transactions_cluster import OVERRIDES, coordinator_of, describe_on, txn_producer
from tests.e2e.txn_helpers import ck_read_to_end
from tests.integration.reassign_cluster import PREFERRED, elect, election_codes, reassign, running
from tests.integration.support import metadata_req
from tests.integration.test_txn_bad_input import add_partitions, end_txn, init_ok
from tests.rawclient import RawClient

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

#: Internal topics with one replica (the frozen node must not hold up their writes), 50 partitions.
INTERNAL_RF1 = {"transaction.state.log.replication.factor": "1", "transaction.state.log.min.isr": "1",
                "offsets.topic.replication.factor": "1"}


def test_a_held_request_whose_coordinator_moves_is_answered_not_coordinator_at_once(tmp_path: Path) -> None:
    with running(tmp_path, {**OVERRIDES, **INTERNAL_RF1}) as cl:
        tid = "held-move"
        coordinator = coordinator_of(cl, tid)
        state_partition = txn_partition_for(tid, 50)
        with RawClient(cl.nodes[coordinator].bootstrap) as c:
            controller = int(c.request(metadata_req(allow_create=False)).controller_id)
        frozen = next(i for i in cl.nodes if i not in (coordinator, controller))
        successor = next(i for i in cl.nodes if i not in (coordinator, frozen))
        admin = AdminClient({"bootstrap.servers": cl.bootstrap})
        for topic, node in (("pinned", frozen), ("free", successor)):
            admin.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[node]])])[topic].result(20)
            cl.wait_leaders(topic, 1)
        # the id's partition gets a second replica, preferred but not leading yet
        assert [code for *_, code, _ in reassign(cl, controller, [
            (TRANSACTION_STATE_TOPIC, state_partition, [successor, coordinator])])] == [ErrorCode.none]
        cl.wait_partition(TRANSACTION_STATE_TOPIC, ([successor, coordinator], None, coordinator), state_partition)
        wait_until(lambda: sorted(cl.partition(successor, TRANSACTION_STATE_TOPIC, state_partition)[1])
                   == sorted((coordinator, successor)), timeout=30, message="the new replica in the ISR")

        frozen_proc = cl.nodes[frozen].proc
        assert frozen_proc is not None
        with RawClient(cl.nodes[coordinator].bootstrap) as c:
            pid, epoch = init_ok(c, tid)
            assert add_partitions(c, tid, pid, epoch, {"pinned": [0]}) == {("pinned", 0): ErrorCode.none}
            frozen_proc.send_signal(signal.SIGSTOP)  # its COMMIT marker waits (not long enough to be fenced)
            try:
                assert end_txn(c, tid, pid, epoch, commit=True) == ErrorCode.none
                codes: list[dict[tuple[str, int], ErrorCode]] = []
                answer: dict[str, float] = {}

                def held_add() -> None:
                    sent = time.monotonic()
                    codes.append(add_partitions(c, tid, pid, epoch, {"free": [0]}))
                    answer["at"] = time.monotonic()
                    answer["held"] = answer["at"] - sent

                adding = threading.Thread(target=held_add)
                adding.start()
                adding.join(0.1)
                assert adding.is_alive(), answer  # held (CONCURRENT_TRANSACTIONS would be at once otherwise)
                result = elect(cl, controller, PREFERRED, [(TRANSACTION_STATE_TOPIC, state_partition)])
                elected = time.monotonic()
                assert election_codes(result) == {(TRANSACTION_STATE_TOPIC, state_partition): ErrorCode.none}
                adding.join(CONCURRENT_HOLD_S + 5)
                assert not adding.is_alive(), "the held request was never answered"
                assert codes == [{("free", 0): ErrorCode.not_coordinator}]
                assert answer["held"] < CONCURRENT_HOLD_S - 0.2, answer  # not held to the end
                assert answer["at"] - elected < 0.5, answer  # answered as the coordinator resigned
            finally:
                frozen_proc.send_signal(signal.SIGCONT)

        wait_until(lambda: coordinator_of(cl, tid) == successor, message="every node names the new coordinator")
        wait_until(lambda: describe_on(cl, successor, tid).transaction_state == "CompleteCommit", timeout=30,
                   message="the new coordinator completed the commit once the marker could be written")
        with RawClient(cl.nodes[successor].bootstrap) as c:  # the raw client carries on there
            assert add_partitions(c, tid, pid, epoch, {"free": [0]}) == {("free", 0): ErrorCode.none}
            assert end_txn(c, tid, pid, epoch, commit=True) == ErrorCode.none

        # librdkafka, the same id (fences the raw client's epoch): its next transaction's adds are held
        # while the previous commit's marker waits for the frozen node, and the id moves back meanwhile
        p = txn_producer(cl.bootstrap, tid)
        committed = [b"a", b"b"]
        p.begin_transaction()
        for v in committed:
            p.produce("free", v, partition=0)
            p.produce("pinned", v, partition=0)
        assert p.flush(20) == 0
        frozen_proc.send_signal(signal.SIGSTOP)
        try:
            p.commit_transaction(20)  # answered once PrepareCommit is written; the marker waits
            p.begin_transaction()
            p.produce("free", b"c", partition=0)
            assert [code for *_, code, _ in reassign(cl, controller, [
                (TRANSACTION_STATE_TOPIC, state_partition, [coordinator, successor])])] == [ErrorCode.none]
            cl.wait_partition(TRANSACTION_STATE_TOPIC, ([coordinator, successor], None, successor), state_partition,
                              nodes=(coordinator, successor))  # not the frozen one
            assert election_codes(elect(cl, controller, PREFERRED, [(TRANSACTION_STATE_TOPIC, state_partition)])) == {
                (TRANSACTION_STATE_TOPIC, state_partition): ErrorCode.none}
        finally:
            frozen_proc.send_signal(signal.SIGCONT)
        resumed = time.monotonic()
        p.commit_transaction(30)
        assert time.monotonic() - resumed < 10
        wait_until(lambda: coordinator_of(cl, tid) == coordinator, message="the id moved back")
        assert [m.value() for m in ck_read_to_end(cl.bootstrap, "free", [0], isolation="read_committed")] == [
            b"a", b"b", b"c"]
        assert [m.value() for m in ck_read_to_end(cl.bootstrap, "pinned", [0], isolation="read_committed")] == committed
