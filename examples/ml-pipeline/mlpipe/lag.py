"""The seed's monitoring advice: a consumer group's lag (end offset - committed offset, summed over
partitions), as `suoi consumer-groups --describe --group <group>` shows it.

On a topic written in transactions (processed-events, features) the end offset counts the commit
markers too, so a caught-up group shows a lag of up to one per partition, as it does with Kafka."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from .config import Pipeline


def group_lag(p: Pipeline, group: str, topic: str) -> int | None:
    """Total lag of `group` on `topic`; None while the group has committed nothing."""
    c = Consumer(p.client(**{"group.id": group, "enable.auto.commit": False}))
    try:
        parts = c.list_topics(topic, timeout=15).topics[topic].partitions
        committed = c.committed([TopicPartition(topic, i) for i in parts], timeout=15)
        if all(tp.offset < 0 for tp in committed):
            return None
        total = 0
        for tp in committed:
            high = c.get_watermark_offsets(tp, timeout=15)[1]
            total += high - max(tp.offset, 0)
        return total
    finally:
        c.close()
