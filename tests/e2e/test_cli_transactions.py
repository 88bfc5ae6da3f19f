"""`suoi transactions` (kafka-transactions.sh) against a real broker: a transactional producer
killed mid-transaction and an orphan transactional batch (a producer its coordinator never
heard of: the classic hanging transaction) hold the last stable offset; the tool lists,
describes and finds them, and `abort` lets read_committed consumers past them."""

from __future__ import annotations

import datetime
import subprocess
import sys
import time

import confluent_kafka
import pytest
from kio.schema.errors import ErrorCode
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest

from suoi.cli.tables import split_kafka_table
from suoi.protocol.records import build_batch
from tests.e2e.cli import fails, ok
from tests.e2e.helpers import create_topic
from tests.e2e.txn_helpers import READ_COMMITTED, READ_UNCOMMITTED, ck_read_to_end, latest
from tests.integration.support import produce_req
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(90)

#: A transactional producer that writes one record to partition 0 and then waits to be killed.
KILLED_PRODUCER = """
import sys, time, confluent_kafka
bootstrap, tid, topic = sys.argv[1:4]
p = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "transactional.id": tid,
                              "transaction.timeout.ms": 600000})
p.init_transactions(20)
p.begin_transaction()
p.produce(topic, b"open", partition=0)
assert p.flush(20) == 0
print("written", flush=True)
time.sleep(120)
"""


def orphan_transactional_batch(bootstrap: str, topic: str, partition: int) -> int:
    """A transactional batch from an idempotent producer id no coordinator knows; its pid."""
    old_ms = int(time.time() * 1000) - 120_000
    with RawClient(bootstrap) as c:
        init = c.request(InitProducerIdRequest(transactional_id=None, transaction_timeout=datetime.timedelta(seconds=60),
                                               producer_id=-1, producer_epoch=-1))
        assert init.error_code == ErrorCode.none
        pid = int(init.producer_id)
        batch = build_batch([(None, b"orphan")], producer_id=pid, producer_epoch=0, base_sequence=0,
                            is_transactional=True, timestamp_ms=old_ms)
        part = c.request(produce_req(topic, partition, batch)).responses[0].partition_responses[0]
    assert part.error_code == ErrorCode.none and part.base_offset == 0
    return pid


def tx(bootstrap: str, *args: str) -> list[list[str]]:
    return split_kafka_table(ok("transactions", "--bootstrap-server", bootstrap, *args))


def test_list_describe_find_and_abort_hanging_transactions(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=2)
    broker_id = next(iter(confluent_kafka.admin.AdminClient({"bootstrap.servers": bootstrap})
                          .list_topics(timeout=10).brokers))
    tid = f"killed-{topic}"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_PRODUCER, bootstrap, tid, topic],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "written"
    finally:
        proc.kill()
        proc.wait(10)
    orphan_pid = orphan_transactional_batch(bootstrap, topic, 1)
    for p in (0, 1):  # both open transactions hold the last stable offset at their first record
        assert (latest(bootstrap, topic, p, READ_COMMITTED), latest(bootstrap, topic, p, READ_UNCOMMITTED)) == (0, 1)

    listed = tx(bootstrap, "list")
    assert listed[0] == ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"]
    [mine] = [r for r in listed[1:] if r[0] == tid]
    assert mine[1] == str(broker_id) and mine[3] == "Ongoing"
    killed_pid = int(mine[2])

    described = tx(bootstrap, "describe", "--transactional-id", tid)
    assert described[0] == ["CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch", "TransactionState",
                            "TransactionTimeoutMs", "CurrentTransactionStartTimeMs", "TransactionDurationMs",
                            "TopicPartitions"]
    row = dict(zip(described[0], described[1], strict=True))
    assert (row["CoordinatorId"], row["ProducerId"], row["TransactionState"], row["TransactionTimeoutMs"],
            row["TopicPartitions"]) == (str(broker_id), str(killed_pid), "Ongoing", "600000", f"{topic}-0")
    assert 0 <= int(row["TransactionDurationMs"]) < 60_000

    producers = tx(bootstrap, "describe-producers", "--topic", topic, "--partition", "0")
    assert producers[0] == ["ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence",
                            "LastTimestamp", "CurrentTransactionStartOffset"]
    assert [(r[0], r[3], r[5]) for r in producers[1:]] == [(str(killed_pid), "0", "0")]

    # the orphan hangs (open for 2 minutes, no coordinator knows its producer)...
    hanging = tx(bootstrap, "find-hanging", "--broker-id", str(broker_id), "--max-transaction-timeout", "1")
    assert hanging[0] == ["Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch", "StartOffset",
                          "LastTimestamp", "Duration(min)"]
    assert [(r[0], r[1], r[2], r[5], r[7]) for r in hanging[1:]] == [(topic, "1", str(orphan_pid), "0", "2")]
    # ...the killed producer's transaction does not: its coordinator still lists the partition
    assert len(tx(bootstrap, "find-hanging", "--topic", topic, "--partition", "0",
                  "--max-transaction-timeout", "0")) == 1  # header only

    assert "Could not find any open transactions starting at offset 5" in fails(
        "transactions", "--bootstrap-server", bootstrap, "abort", "--topic", topic, "--partition", "1",
        "--start-offset", "5")
    for p in (1, 0):
        assert ok("transactions", "--bootstrap-server", bootstrap, "abort", "--topic", topic, "--partition", str(p),
                  "--start-offset", "0") == ""
        assert latest(bootstrap, topic, p, READ_COMMITTED) == latest(bootstrap, topic, p, READ_UNCOMMITTED) == 2
    assert len(tx(bootstrap, "describe-producers", "--topic", topic, "--partition", "1")) == 2
    assert tx(bootstrap, "describe-producers", "--topic", topic, "--partition", "1")[1][5] == "None"

    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap})
    for p in (0, 1):
        producer.produce(topic, b"after", partition=p)
    assert producer.flush(10) == 0
    seen = ck_read_to_end(bootstrap, topic, [0, 1], isolation="read_committed")
    assert sorted((m.partition(), m.value()) for m in seen) == [(0, b"after"), (1, b"after")]
