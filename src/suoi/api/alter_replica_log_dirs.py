"""AlterReplicaLogDirs (key 34, v1-v2): move replicas hosted here to another of its log dirs.

Kafka's answers (ReplicaManager.alterReplicaLogDirs): a path that is not one of this node's
log dirs is LOG_DIR_NOT_FOUND, a replica not hosted here REPLICA_NOT_AVAILABLE (and it will be
created in that dir if it comes here later, until a restart); otherwise NONE
at once, and the move runs in the background: a future replica is copied in the target dir
and caught up (`suoi.log.replica_move`, off the event loop), then swapped in on the loop. DescribeLogDirs shows
the future replica (is_future_key) with its offset lag until then.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import TYPE_CHECKING, Any

from suoi.api.registry import RequestContext, api
from suoi.log.errors import UnknownTopicOrPartitionError
from suoi.log.replica_move import ReplicaMove, catch_up, copy_bulk
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.log.manager import LogManager

log = logging.getLogger("suoi.api")
_RUNNING: set[asyncio.Task[None]] = set()  # moves in progress (kept referenced until done)


async def _run_move(logs: LogManager, move: ReplicaMove) -> None:
    try:
        plog = logs.get_log(move.topic, move.partition)
        end = plog.log_end_offset if plog is not None else 0
        await asyncio.to_thread(copy_bulk, move)
        move.copied_up_to = max(move.copied_up_to, end)
        await asyncio.to_thread(catch_up, move)  # what was appended meanwhile: off the loop too
        if logs.finish_move(move, remove_old=False) and move.doomed is not None:
            await asyncio.to_thread(shutil.rmtree, move.doomed, True)  # unlinks of a whole dir
    except OSError as exc:
        log.warning("moving replica %s-%d to %s failed: %s", move.topic, move.partition, move.target_dir, exc)
        logs.cancel_move(move)


def _start(ctx: RequestContext, path: str, topic: str, partition: int) -> ErrorCode:
    logs = ctx.services.logs
    target = logs.configured_log_dir(path)
    if target is None:
        return ErrorCode.log_dir_not_found
    if target in logs.offline_dirs or logs.is_offline(topic, partition):
        return ErrorCode.kafka_storage_error
    try:
        move = logs.begin_move(topic, partition, target)
    except UnknownTopicOrPartitionError:
        return ErrorCode.replica_not_available
    if move is not None:
        start_move(logs, move)
    return ErrorCode.none


def start_move(logs: LogManager, move: ReplicaMove) -> None:
    """Run a move in the background (once: a move already running is left alone). The broker
    also calls it at start for moves interrupted by a stop or crash."""
    if any(t.get_name() == str(id(move)) for t in _RUNNING):
        return
    task = asyncio.get_running_loop().create_task(_run_move(logs, move), name=str(id(move)))
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    log.info("moving replica %s-%d to log dir %s", move.topic, move.partition, move.target_dir)


@api(34, "AlterReplicaLogDirs", 1, 2)
def handle_alter_replica_log_dirs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {}
    for d in request.dirs:
        for t in d.topics:
            for p in t.partitions:
                results.setdefault(t.name, []).append(
                    {"partition_index": p, "error_code": _start(ctx, d.path, t.name, int(p))})
    return {"throttle_time": 0, "results": [{"topic_name": n, "partitions": ps} for n, ps in results.items()]}
