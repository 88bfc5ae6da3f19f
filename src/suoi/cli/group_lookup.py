"""What `suoi consumer-groups` reads about groups through confluent-kafka's AdminClient:
descriptions, committed offsets, ListOffsets per partition, group ids and states, and the
--topic T[:P,P...] argument resolved against the cluster metadata."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from suoi.cli.common import TIMEOUT_S, CliError, kafka_error_text, result

STATE_NAMES = {"UNKNOWN": "Unknown", "PREPARING_REBALANCING": "PreparingRebalance",
               "COMPLETING_REBALANCING": "CompletingRebalance", "STABLE": "Stable", "DEAD": "Dead",
               "EMPTY": "Empty"}


def state_name(value: Any) -> str:
    name = getattr(value, "name", None)
    if name is None:
        return str(value)
    return STATE_NAMES.get(name, name.title())


def describe_groups(admin: Any, groups: list[str]) -> dict[str, Any]:
    if not groups:
        return {}
    futures = admin.describe_consumer_groups(groups, request_timeout=TIMEOUT_S)
    return {g: result(futures[g]) for g in groups}


def committed_offsets(admin: Any, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets (only partitions that have one)."""
    from confluent_kafka import ConsumerGroupTopicPartitions

    futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=TIMEOUT_S)
    res = result(futures[group])
    out = {}
    for tp in res.topic_partitions or []:
        if tp.error is None and tp.offset >= 0:
            out[(tp.topic, tp.partition)] = tp.offset
    return out


def list_offsets(admin: Any, partitions: Iterable[tuple[str, int]], spec: Any) -> dict[tuple[str, int], int | None]:
    """ListOffsets for `spec` per partition; None where the broker has no answer (e.g. deleted topic)."""
    from confluent_kafka import KafkaException, TopicPartition

    wanted = sorted(set(partitions))
    if not wanted:
        return {}
    futures = admin.list_offsets({TopicPartition(t, p): spec for t, p in wanted}, request_timeout=TIMEOUT_S)
    out: dict[tuple[str, int], int | None] = {}
    for tp, fut in futures.items():
        try:
            offset = result(fut).offset
        except KafkaException:
            offset = -1
        out[(tp.topic, tp.partition)] = offset if offset >= 0 else None
    return out


def log_end_offsets(admin: Any, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int | None]:
    from confluent_kafka.admin import OffsetSpec

    return list_offsets(admin, partitions, OffsetSpec.latest())


def listed_groups(admin: Any, **kwargs: Any) -> list[Any]:
    """ListGroups (kwargs: e.g. states) -> the listings; any error fails the command."""
    res = result(admin.list_consumer_groups(request_timeout=TIMEOUT_S, **kwargs))
    if res.errors:
        raise CliError(f"listing groups failed: {error_text(res.errors[0])}")
    return list(res.valid)


def _all_group_ids(admin: Any) -> list[str]:
    return sorted(g.group_id for g in listed_groups(admin))


def error_text(err: Any) -> str:
    from confluent_kafka import KafkaError, KafkaException

    if isinstance(err, KafkaException) and err.args and isinstance(err.args[0], KafkaError):
        return kafka_error_text(err.args[0])
    if isinstance(err, KafkaError):
        return kafka_error_text(err)
    return str(err)


def group_ids(admin: Any, args: argparse.Namespace) -> list[str]:
    return _all_group_ids(admin) if args.all_groups else list(dict.fromkeys(args.group))


def group_state(desc: Any, committed: dict[tuple[str, int], int]) -> str:
    state = state_name(desc.state)
    # A group that only has committed offsets (simple consumers) exists, with no members: Empty.
    if state == "Dead" and committed:
        return "Empty"
    return state


def parse_topics(md: Any, specs: list[str]) -> list[tuple[str, int]]:
    """--topic T or T:0,2 -> partitions (all of T's when none are given)."""
    out: list[tuple[str, int]] = []
    for spec in specs:
        topic, sep, parts = spec.partition(":")
        topic = topic.strip()
        if topic not in md.topics:
            raise CliError(f"Topic '{topic}' does not exist")
        known = sorted(md.topics[topic].partitions)
        if not sep:
            out += [(topic, p) for p in known]
            continue
        for part in filter(None, (x.strip() for x in parts.split(","))):
            try:
                p = int(part)
            except ValueError:
                raise CliError(f"--topic {spec!r}: {part!r} is not a partition number") from None
            if p not in known:
                raise CliError(f"Partition {topic}-{p} does not exist (the topic has {len(known)} partitions)")
            out.append((topic, p))
    return sorted(set(out))
