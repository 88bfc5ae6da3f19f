"""Migration of a data dir of the former standalone mode into a one-voter metadata log.

Before every node was a KRaft node, a node without `process.roles` ran "standalone": its
topics lived only in local files (`suoi.mode=standalone` in meta.properties, or no mode and
no metadata log). A KRaft node keeps exactly the partitions its metadata log names and
deletes the rest, so such a dir must not simply be started as one. Instead, at its first
start as a single combined node that is its own quorum (no `process.roles`, or
`broker,controller` with only itself as voter), the active controller writes the dir's
topics into the metadata log as the records a creation would have written: each topic with
its topic id, its partitions (this node the only replica, leader and ISR) and its config
overrides; the dynamic broker configs; and a producer-id record past the last block the
standalone node reserved, so no producer id is handed out twice. The partition logs stay as
they are; committed offsets and transactional state are in the internal topics, which are
migrated like any topic. Until the records are committed the node neither reconciles its logs
with the metadata image nor serves clients; then meta.properties says `suoi.mode=kraft`.
A crash in between repeats the migration at the next start (only what the image lacks).

A standalone dir with topics started as part of a larger quorum is refused with one line
saying how to migrate it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from suoi.controller import records as mrec
from suoi.controller.image import ConfigResourceType, MetadataImage
from suoi.log.meta_properties import write_meta_file

if TYPE_CHECKING:
    from suoi.cluster.settings import KRaftSettings
    from suoi.config import BrokerConfig
    from suoi.log.manager import LogManager

log = logging.getLogger("suoi.cluster")

#: meta.properties key recording which mode wrote the dir.
MODE_KEY = "suoi.mode"
#: The files of the standalone mode read here (their writers are gone).
PRODUCER_ID_BLOCK_FILE = "producer-id-block"
DYNAMIC_CONFIGS_FILE = "dynamic-broker-configs.json"
METADATA_LOG_DIRNAME = "__cluster_metadata-0"


class StandaloneDataDirError(RuntimeError):
    """A standalone data dir with topics that this node cannot migrate (one line: how to)."""


def _read_meta(path: Path) -> tuple[list[str], dict[str, str]]:
    lines = path.read_text().splitlines()
    return lines, dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def mark_kraft(log_dir: Path) -> None:
    """Record in meta.properties that the dir is a KRaft node's (atomically)."""
    meta = log_dir / "meta.properties"
    lines, values = _read_meta(meta)
    if values.get(MODE_KEY) == "kraft":
        return
    write_meta_file(log_dir, "\n".join([ln for ln in lines if not ln.startswith(f"{MODE_KEY}=")] + [f"{MODE_KEY}=kraft", ""]))


@dataclass
class StandaloneMigration:
    """The metadata records of a standalone dir's state, and when they are in the image."""

    log_dir: Path
    node_id: int
    records: tuple[mrec.Record, ...]
    topics: frozenset[str]
    done: asyncio.Event

    @staticmethod
    def check(config: BrokerConfig, settings: KRaftSettings, logs: LogManager) -> StandaloneMigration | None:
        """At start, after the logs are loaded: the migration this dir needs (None: it is a
        KRaft dir, or a standalone one without topics, now marked KRaft). Raises
        `StandaloneDataDirError` when it needs one this node cannot run."""
        log_dir = Path(config.log_dirs[0])
        _, values = _read_meta(log_dir / "meta.properties")
        has_metadata_log = (Path(settings.metadata_dir) / METADATA_LOG_DIRNAME).exists()
        recorded = values.get(MODE_KEY) or ("kraft" if has_metadata_log else "standalone")
        topics = logs.topics()
        if recorded == "kraft" or not topics:
            mark_kraft(log_dir)
            return None
        if not (settings.is_broker and settings.is_controller and set(settings.voters) == {settings.node_id}):
            raise StandaloneDataDirError(
                f"{log_dir} holds the topics of a standalone suoi node: start it once as a single node "
                "(without process.roles) so it migrates them into its metadata log, then reconfigure it")
        node = settings.node_id
        records: list[mrec.Record] = []
        for name, info in sorted(topics.items()):
            records.append(mrec.Topic(name=name, topic_id=info.topic_id))
            records.extend(mrec.Partition(topic_id=info.topic_id, partition=p, replicas=(node,), isr=(node,),
                                          leader=node) for p in range(info.partitions))
            records.extend(mrec.Config(resource_type=int(ConfigResourceType.TOPIC), resource_name=name,
                                       name=key, value=str(value)) for key, value in sorted(info.configs.items()))
        records.extend(_dynamic_broker_configs(log_dir, node))
        next_pid = _producer_id_block_end(log_dir)
        if next_pid:
            records.append(mrec.ProducerIds(broker_id=-1, broker_epoch=-1, next_producer_id=next_pid))
        log.info("%s holds %d topics of a standalone node: migrating them into the metadata log", log_dir,
                 len(topics))
        return StandaloneMigration(log_dir, node, tuple(records), frozenset(topics), asyncio.Event())

    def missing(self, image: MetadataImage) -> list[mrec.Record]:
        """The records the image lacks: all of a topic's if the topic is absent; configs and
        the producer-id floor only with the topics (they were written together)."""
        absent = {r.topic_id for r in self.records if isinstance(r, mrec.Topic) and image.topic(r.name) is None}
        if not absent:
            return []
        out: list[mrec.Record] = []
        for r in self.records:
            if isinstance(r, mrec.Topic | mrec.Partition):
                if r.topic_id in absent:
                    out.append(r)
            elif isinstance(r, mrec.ProducerIds):
                if r.next_producer_id > image.next_producer_id:
                    out.append(r)
            elif isinstance(r, mrec.Config) and (r.resource_type != ConfigResourceType.TOPIC
                                                 or image.topic(r.resource_name) is None):
                out.append(r)
        return out

    def apply(self, controller: Any) -> Any:
        """A controller operation (`KRaftServices.run_on_controller`): stage what is missing."""
        for record in self.missing(controller.image):
            controller.stage(record)
        return controller.finish(None)

    def check_done(self, image: MetadataImage) -> bool:
        """Called with each new image: once every migrated topic is in it, the dir is KRaft's."""
        if self.done.is_set() or any(image.topic(name) is None for name in self.topics):
            return self.done.is_set()
        mark_kraft(self.log_dir)
        self.done.set()
        log.info("migrated %d topics of the standalone node into the metadata log (metadata offset %d)",
                 len(self.topics), image.offset)
        return True


def _dynamic_broker_configs(log_dir: Path, node: int) -> Sequence[mrec.Record]:
    try:
        doc = json.loads((log_dir / DYNAMIC_CONFIGS_FILE).read_text())
    except FileNotFoundError:
        return []
    layers = (("", doc.get("cluster_default") or {}), (str(node), doc.get("broker") or {}))
    return [mrec.Config(resource_type=int(ConfigResourceType.BROKER), resource_name=resource, name=key,
                        value=str(value)) for resource, values in layers for key, value in sorted(values.items())]


def _producer_id_block_end(log_dir: Path) -> int:
    """The end of the last producer-id block the standalone node reserved (0: none)."""
    try:
        return int((log_dir / PRODUCER_ID_BLOCK_FILE).read_text().strip())
    except FileNotFoundError:
        return 0
