"""An abort of the empty next transaction, sent to the coordinator that took the transactional id
over (the fault run "kill 2, kill 1": librdkafka's EndTxn(abort) met a new coordinator that
answered a fatal INVALID_TXN_STATE). See suoi/coordinator/txn/README.md."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode

from suoi.coordinator.txn import TRANSACTION_STATE_TOPIC, txn_partition_for
from tests.conftest import wait_until
from tests.e2e.test_transactions_cluster import OVERRIDES, coordinator_of, describe_on
from tests.integration.kraft_cluster import kraft_cluster
from tests.integration.support import metadata_req
from tests.integration.test_txn_bad_input import add_partitions, end_txn, init_ok
from tests.rawclient import RawClient

#: the id's __transaction_state partition on two nodes: the coordinator and its successor, so
#: the third one (which leads the transaction's partition, and is frozen) holds none of it
TXN_RF2 = {"transaction.state.log.replication.factor": "2", "transaction.state.log.min.isr": "1"}


@pytest.mark.slow
def test_an_abort_after_a_refused_add_succeeds_at_the_next_coordinator(tmp_path: Path) -> None:
    """A commit is answered while its marker cannot be written (the partition's only replica,
    node F, is frozen); the producer's next AddPartitionsToTxn is refused CONCURRENT_TRANSACTIONS;
    then the coordinator is SIGKILLed (F resumed) and the producer aborts at the next coordinator,
    which completes the commit. That abort succeeds (it was INVALID_TXN_STATE: the refusal lived
    in the killed coordinator's memory only), and the committed record stays committed."""
    with kraft_cluster(tmp_path, 3, {**OVERRIDES, **TXN_RF2}) as cl:
        tid = "abort-after-move"
        coordinator = coordinator_of(cl, tid)
        with RawClient(cl.nodes[coordinator].bootstrap) as c:
            [topic] = c.request(metadata_req(TRANSACTION_STATE_TOPIC, allow_create=False)).topics
        part = txn_partition_for(tid)
        [state_part] = [p for p in topic.partitions if p.partition_index == part]
        successor = next(int(r) for r in state_part.replica_nodes if int(r) != coordinator)
        frozen = next(i for i in cl.nodes if i not in (coordinator, successor))
        admin = AdminClient({"bootstrap.servers": cl.bootstrap})
        admin.create_topics([NewTopic("pinned", num_partitions=1, replica_assignment=[[frozen]])])["pinned"].result(20)
        cl.wait_leaders("pinned", 1)
        frozen_proc = cl.nodes[frozen].proc
        assert frozen_proc is not None
        state_dir = cl.nodes[successor].log_dirs[0] / f"{TRANSACTION_STATE_TOPIC}-{part}"

        def refusal_replicated() -> bool:  # the successor's copy of the log holds the refusal
            return any(b'"next_txn_refused":true' in f.read_bytes() for f in state_dir.glob("*.log"))

        with RawClient(cl.nodes[coordinator].bootstrap) as c:
            pid, epoch = init_ok(c, tid)
            assert add_partitions(c, tid, pid, epoch, {"pinned": [0]}) == {("pinned", 0): ErrorCode.none}
            frozen_proc.send_signal(signal.SIGSTOP)  # briefly: well within broker.session.timeout.ms
            try:
                assert end_txn(c, tid, pid, epoch, commit=True) == ErrorCode.none
                refused = add_partitions(c, tid, pid, epoch, {"pinned": [0]})
                assert refused == {("pinned", 0): ErrorCode.concurrent_transactions}
                assert describe_on(cl, coordinator, tid).transaction_state == "PrepareCommit"
                wait_until(refusal_replicated, timeout=10, interval=0.05, message="the refusal on the successor")
                cl.nodes[coordinator].kill()
            finally:
                frozen_proc.send_signal(signal.SIGCONT)

        assert wait_until(lambda: coordinator_of(cl, tid) != coordinator, timeout=20) is True
        new = coordinator_of(cl, tid)
        assert new == successor

        def abort() -> tuple[ErrorCode] | None:  # None while the successor loads the partition
            with RawClient(cl.nodes[new].bootstrap) as c2:
                err = end_txn(c2, tid, pid, epoch, commit=False)
            return None if err in (ErrorCode.coordinator_load_in_progress, ErrorCode.not_coordinator) else (err,)

        assert wait_until(abort, timeout=20, message="the abort answered") == (ErrorCode.none,)
        wait_until(lambda: describe_on(cl, new, tid).transaction_state == "CompleteCommit", timeout=20,
                   message="the commit completed at the new coordinator")
        with RawClient(cl.nodes[new].bootstrap) as c2:
            # a retry of that commit is still NONE; an abort of it (no refusal since) is refused
            assert end_txn(c2, tid, pid, epoch, commit=True) == ErrorCode.none
            assert add_partitions(c2, tid, pid, epoch, {"pinned": [0]}) == {("pinned", 0): ErrorCode.none}
            assert end_txn(c2, tid, pid, epoch, commit=True) == ErrorCode.none
            wait_until(lambda: describe_on(cl, new, tid).transaction_state == "CompleteCommit", timeout=20)
            assert end_txn(c2, tid, pid, epoch, commit=False) == ErrorCode.invalid_txn_state
