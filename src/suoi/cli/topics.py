"""`suoi topics`: kafka-topics.sh with the same flags and output layout."""

from __future__ import annotations

import argparse
from typing import Any

from suoi.cli.common import (
    TIMEOUT_S,
    CliError,
    add_common_args,
    admin_client,
    cluster_metadata,
    guarded,
    kafka_uuid,
    match_topics,
    parse_kv,
    print_json,
    result,
    retrying,
)

DEFAULT_CONFIG_SOURCE = 5


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "topics", help="create, list, describe, alter and delete topics (kafka-topics)",
        description="Create, list, describe, alter (add partitions) and delete topics. Same flags as "
        "Kafka's kafka-topics.sh.",
        epilog="example: suoi topics --create --topic orders --partitions 3 --bootstrap-server localhost:9092",
    )
    add_common_args(p)
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--create", action="store_true", help="create a topic")
    action.add_argument("--list", action="store_true", help="list topic names")
    action.add_argument("--describe", action="store_true", help="partitions, leaders, replicas and configs")
    action.add_argument("--alter", action="store_true", help="add partitions (--partitions) or set --config")
    action.add_argument("--delete", action="store_true", help="delete topics")
    p.add_argument("--topic", metavar="TOPIC", help="topic name; a regular expression except with --create")
    p.add_argument("--partitions", type=int, metavar="N", help="partition count (--create; --alter to grow)")
    p.add_argument("--replication-factor", type=int, metavar="N", help="replicas per partition (--create)")
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="topic config, repeatable (--create, --alter)")
    p.add_argument("--if-not-exists", action="store_true", help="--create: succeed if the topic exists")
    p.add_argument("--if-exists", action="store_true",
                   help="--alter/--delete/--describe: succeed if no topic matches")
    p.add_argument("--exclude-internal", action="store_true", help="leave out internal topics (__*)")
    p.add_argument("--under-replicated-partitions", action="store_true",
                   help="--describe: only partitions whose ISR is smaller than their replica list")
    p.add_argument("--under-min-isr-partitions", action="store_true",
                   help="--describe: only partitions whose ISR is smaller than min.insync.replicas "
                   "(acks=all produces fail)")
    p.add_argument("--at-min-isr-partitions", action="store_true",
                   help="--describe: only partitions whose ISR is exactly min.insync.replicas")
    p.add_argument("--unavailable-partitions", action="store_true",
                   help="--describe: only partitions without a leader")
    p.set_defaults(func=guarded("topics")(run))


def run(args: argparse.Namespace) -> int:
    _check_flags(args)
    admin = admin_client(args)
    md = cluster_metadata(admin, args.bootstrap_server)
    if args.create:
        return _create(admin, args)
    if args.list:
        names = match_topics(md.topics, args.topic, exclude_internal=args.exclude_internal)
        if args.output == "json":
            print_json({"topics": names})
        else:
            for name in names:
                print(name)
        return 0
    names = match_topics(md.topics, args.topic, exclude_internal=args.exclude_internal)
    if not names and args.topic is not None and not args.if_exists:
        raise CliError(f"Topic '{args.topic}' does not exist as expected")
    if args.describe:
        return _describe(admin, md, names, args)
    if args.delete:
        return _delete(admin, names, args)
    return _alter(admin, md, names, args)


def _check_flags(args: argparse.Namespace) -> None:
    if (args.create or args.alter or args.delete) and not args.topic:
        raise CliError("--topic is required with --create, --alter and --delete")
    if args.partitions is not None and not (args.create or args.alter):
        raise CliError("--partitions is only valid with --create or --alter")
    if args.replication_factor is not None and not args.create:
        raise CliError("--replication-factor is only valid with --create")
    if args.config and not (args.create or args.alter):
        raise CliError("--config is only valid with --create or --alter")
    if args.if_not_exists and not args.create:
        raise CliError("--if-not-exists is only valid with --create")
    if args.if_exists and not (args.alter or args.delete or args.describe):
        raise CliError("--if-exists is only valid with --alter, --delete or --describe")
    if args.alter and args.partitions is None and not args.config:
        raise CliError("--alter needs --partitions or --config")
    if args.partitions is not None and args.partitions < 1:
        raise CliError("--partitions must be at least 1")


def _create(admin: Any, args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic

    configs = parse_kv(args.config, "--config")
    new = NewTopic(args.topic, num_partitions=args.partitions if args.partitions is not None else -1,
                   replication_factor=args.replication_factor if args.replication_factor is not None else -1,
                   config=configs)
    created = True
    try:
        result(admin.create_topics([new], operation_timeout=TIMEOUT_S)[args.topic])
    except KafkaException as exc:
        if not (args.if_not_exists and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS):
            raise
        created = False
    if args.output == "json":
        print_json({"topic": args.topic, "created": created})
    elif created:
        print(f"Created topic {args.topic}.")
    return 0


def describe_topics(admin: Any, md: Any, names: list[str]) -> list[dict[str, Any]]:
    """Partitions, leaders, ids and non-default configs of `names`, in Kafka's terms."""
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import ConfigResource

    if not names:
        return []

    def attempt(left: float) -> tuple[dict[str, Any], dict[str, Any]]:
        descs = admin.describe_topics(TopicCollection(names), request_timeout=left)
        resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names]
        config_futures = admin.describe_configs(resources, request_timeout=left)
        configs = {r.name: result(f, left) for r, f in config_futures.items()}
        return {n: result(descs[n], left) for n in names}, configs

    # A topic just created may not be known yet to the broker librdkafka asks (retriable).
    descs, configs_by_name = retrying(attempt)
    out = []
    for name in names:
        d = descs[name]
        entries = configs_by_name.get(name, {})
        partitions = []
        for p in sorted(d.partitions, key=lambda p: p.id):
            partitions.append({"partition": p.id, "leader": p.leader.id if p.leader is not None else -1,
                               "replicas": [n.id for n in p.replicas], "isr": [n.id for n in p.isr]})
        out.append({
            "topic": name,
            "topic_id": kafka_uuid(d.topic_id),
            "partition_count": len(partitions),
            "replication_factor": len(partitions[0]["replicas"]) if partitions else 0,
            "configs": {k: e.value for k, e in sorted(entries.items())
                        if int(getattr(e.source, "value", e.source)) != DEFAULT_CONFIG_SOURCE},
            "min_insync_replicas": int(entries["min.insync.replicas"].value) if "min.insync.replicas" in entries else 1,
            "partitions": partitions,
        })
    return out


def _describe(admin: Any, md: Any, names: list[str], args: argparse.Namespace) -> int:
    topics = describe_topics(admin, md, names)
    for t in topics:
        parts = t["partitions"]
        if args.under_replicated_partitions:
            parts = [p for p in parts if len(p["isr"]) < len(p["replicas"])]
        if args.unavailable_partitions:
            parts = [p for p in parts if p["leader"] < 0]
        if args.under_min_isr_partitions:
            parts = [p for p in parts if len(p["isr"]) < t["min_insync_replicas"]]
        if args.at_min_isr_partitions:
            parts = [p for p in parts if len(p["isr"]) == t["min_insync_replicas"]]
        t["partitions"] = parts
    if args.output == "json":
        print_json({"topics": topics})
        return 0
    filtered = (args.under_replicated_partitions or args.unavailable_partitions or args.under_min_isr_partitions
                or args.at_min_isr_partitions)
    for t in topics:
        if not filtered:
            configs = ",".join(f"{k}={v}" for k, v in t["configs"].items())
            print(f"Topic: {t['topic']}\tTopicId: {t['topic_id']}\tPartitionCount: {t['partition_count']}\t"
                  f"ReplicationFactor: {t['replication_factor']}\tConfigs: {configs}")
        for p in t["partitions"]:
            leader = p["leader"] if p["leader"] >= 0 else "none"
            print(f"\tTopic: {t['topic']}\tPartition: {p['partition']}\tLeader: {leader}\t"
                  f"Replicas: {','.join(map(str, p['replicas']))}\tIsr: {','.join(map(str, p['isr']))}")
    return 0


def _delete(admin: Any, names: list[str], args: argparse.Namespace) -> int:
    internal = [n for n in names if n.startswith("__")]
    if internal:
        raise CliError(f"Topic {internal[0]} is a kafka internal topic and is not allowed to be deleted")
    if names:
        futures = admin.delete_topics(names, operation_timeout=TIMEOUT_S)
        for name in names:
            result(futures[name])
    if args.output == "json":
        print_json({"deleted": names})
    else:
        for name in names:
            print(f"Deleted topic {name}.")
    return 0


def _alter(admin: Any, md: Any, names: list[str], args: argparse.Namespace) -> int:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions

    out: list[dict[str, Any]] = []
    configs = parse_kv(args.config, "--config")
    for name in names:
        before = len(md.topics[name].partitions)
        if args.partitions is not None:
            result(admin.create_partitions([NewPartitions(name, args.partitions)],
                                           operation_timeout=TIMEOUT_S)[name])
        if configs:
            entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()]
            futures = admin.incremental_alter_configs([ConfigResource(ConfigResource.Type.TOPIC, name,
                                                                      incremental_configs=entries)])
            for f in futures.values():
                result(f)
        out.append({"topic": name, "partitions_before": before,
                    "partitions": args.partitions if args.partitions is not None else before,
                    "configs_set": configs})
    if args.output == "json":
        print_json({"altered": out})
    else:
        for o in out:
            if args.partitions is not None:
                print(f"Topic {o['topic']}: partition count {o['partitions_before']} -> {o['partitions']}.")
            if o["configs_set"]:
                print(f"Topic {o['topic']}: set {', '.join(f'{k}={v}' for k, v in o['configs_set'].items())}.")
    return 0
