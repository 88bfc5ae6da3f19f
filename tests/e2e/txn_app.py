"""A consume-transform-produce application (confluent-kafka), run as a subprocess by
tests/e2e/test_transactions_faults.py.

    python tests/e2e/txn_app.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID PARTITIONS BATCH STALL_AFTER [stop]

Reads INPUT (assigned partitions, offsets from GROUP, read_committed) and for every batch of
up to BATCH records writes b"out:" + value to the same partition of OUTPUT inside a
transaction that also commits the consumer's positions (send_offsets_to_transaction).
Prints "committed N" after each commit. After STALL_AFTER commits (-1: never) it opens one
more transaction, produces and flushes its records, sends its offsets, prints "stalled" and
waits for a line on stdin before committing it (the test kills the app or the broker meanwhile);
with "stop" it exits 0 (printing "stopped") right after that commit. Otherwise it exits 0 once
every input partition is at its end, bounded by a 60 s deadline.
"""

from __future__ import annotations

import sys
import time

import confluent_kafka


def main() -> int:
    bootstrap, input_topic, output_topic, group, tid, partitions, batch, stall_after = sys.argv[1:9]
    n_partitions, batch_size, stall = int(partitions), int(batch), int(stall_after)
    stop_after_stall = sys.argv[9:] == ["stop"]
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "linger.ms": 5})
    producer.init_transactions(30)
    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
        "isolation.level": "read_committed", "auto.offset.reset": "earliest", "enable.partition.eof": True})
    consumer.assign([confluent_kafka.TopicPartition(input_topic, p) for p in range(n_partitions)])
    commits = 0
    at_eof: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        records = []
        for m in consumer.consume(num_messages=batch_size, timeout=0.5):
            err = m.error()
            if err is None:
                records.append(m)
                at_eof.discard(m.partition())
            elif err.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                at_eof.add(m.partition())
            else:
                raise RuntimeError(f"consume error: {err}")
        if not records:
            if len(at_eof) == n_partitions:
                print("done", flush=True)
                return 0
            continue
        producer.begin_transaction()
        for m in records:
            producer.produce(output_topic, b"out:" + m.value(), key=m.key(), partition=m.partition())
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                             consumer.consumer_group_metadata(), 30)
        if commits == stall:
            assert producer.flush(30) == 0
            print("stalled", flush=True)
            sys.stdin.readline()
        producer.commit_transaction(30)
        commits += 1
        print(f"committed {commits}", flush=True)
        if stop_after_stall and commits == stall + 1:
            print("stopped", flush=True)
            return 0
    print("deadline passed", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
