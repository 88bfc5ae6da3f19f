"""CreateTopics (key 19): partitions and topic configs, persisted with the topic.

A request adding more than MAX_PARTITIONS_PER_REQUEST partitions is refused whole with
POLICY_VIOLATION, as the KRaft controller does (`suoi.controller.topics`).

A single node can hold one replica, so replication.factor > 1 is refused with
INVALID_REPLICATION_FACTOR rather than silently creating less durability than asked.
"""

from __future__ import annotations

import logging
from typing import Any

from suoi.api.cluster_metadata import create_topics_response
from suoi.api.registry import RequestContext, api
from suoi.cluster.pacing import open_missing_logs
from suoi.controller.topics import EXCESSIVE_BATCH_MESSAGE, MAX_PARTITIONS_PER_REQUEST
from suoi.log.config import LogConfig
from suoi.log.errors import LogError, TopicExistsError
from suoi.log.manager import validate_topic_name
from suoi.model import ErrorCode

log = logging.getLogger("suoi.api")
TOPIC_CONFIG_SOURCE = 1


def _result(name: str, error: ErrorCode, message: str | None = None, **extra: Any) -> dict[str, Any]:
    if error != ErrorCode.none:
        # An existing topic is routine (--if-not-exists); anything else is bad input.
        level = logging.INFO if error == ErrorCode.topic_already_exists else logging.WARNING
        log.log(level, "CreateTopics %r refused (%s): %s", name, error.name, message)
    return {"name": name, "topic_id": None, "error_code": error, "error_message": message,
            "num_partitions": -1, "replication_factor": -1, "configs": None, **extra}


@api(19, "CreateTopics", 2, 7)
def handle_create_topics(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.services
    if broker.kraft is not None:
        return create_topics_response(broker, request)
    return _create_standalone(broker, request)


async def _create_standalone(broker: Any, request: Any) -> dict[str, Any]:
    """A standalone node creates the topics itself; their partition logs a slice at a time
    (`open_missing_logs`), so other clients are served meanwhile. Answered once all exist."""
    existing = broker.logs.topics()
    asked = sum(len(t.assignments) if t.assignments else
                broker.config.get_int("num.partitions") if t.num_partitions == -1 else max(t.num_partitions, 0)
                for t in request.topics if t.name not in existing)
    if asked > MAX_PARTITIONS_PER_REQUEST:
        return {"throttle_time": 0, "topics": [_result(t.name, ErrorCode.policy_violation, EXCESSIVE_BATCH_MESSAGE)
                                               for t in request.topics]}
    results = []
    seen: set[str] = set()
    for topic in request.topics:
        name = topic.name
        if name in seen:
            results.append(_result(name, ErrorCode.invalid_request, "topic listed twice in one request"))
            continue
        seen.add(name)
        configs = {c.name: c.value for c in topic.configs if c.value is not None}
        partitions = topic.num_partitions
        rf = topic.replication_factor
        if topic.assignments:
            if partitions != -1 or rf != -1:
                results.append(_result(name, ErrorCode.invalid_request,
                                       "replica assignment given together with partitions/replication factor"))
                continue
            partitions = len(topic.assignments)
            rf = len(topic.assignments[0].broker_ids)
            bad = [b for a in topic.assignments for b in a.broker_ids if b != broker.node_id]
            if bad:
                results.append(_result(name, ErrorCode.invalid_replica_assignment, f"unknown broker ids {sorted(set(bad))}"))
                continue
        if partitions == -1:
            partitions = broker.config.get_int("num.partitions")
        if rf == -1:
            rf = broker.config.get_int("default.replication.factor")
        if partitions < 1:
            results.append(_result(name, ErrorCode.invalid_partitions, "number of partitions must be at least 1"))
            continue
        if rf < 1 or rf > 1:
            results.append(_result(name, ErrorCode.invalid_replication_factor,
                                   f"replication factor {rf} is not possible: this cluster has 1 broker"))
            continue
        try:
            if request.validate_only:
                if name in broker.logs.topics():
                    raise TopicExistsError(f"topic {name!r} already exists")
                validate_topic_name(name)
                LogConfig.from_topic_configs(broker.log_config, configs)
                info_id = None
            else:
                info_id = broker.create_topic(name, partitions, configs, open_logs=False).topic_id
                await open_missing_logs(broker.logs, name)
        except LogError as exc:
            results.append(_result(name, ErrorCode(exc.error_code), str(exc)))
            continue
        results.append(_result(
            name, ErrorCode.none, None, topic_id=info_id, num_partitions=partitions, replication_factor=rf,
            configs=[{"name": k, "value": v, "read_only": False, "config_source": TOPIC_CONFIG_SOURCE,
                      "is_sensitive": False} for k, v in sorted(configs.items())],
        ))
    return {"throttle_time": 0, "topics": results}

