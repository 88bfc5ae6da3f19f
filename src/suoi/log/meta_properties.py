"""meta.properties and storage formatting: which cluster a node's directories belong to.

Kafka stamps every log directory (and the metadata log directory) with `meta.properties`
(`version=1`, `cluster.id`, `node.id`, `directory.id`) when `kafka-storage.sh format` runs,
and refuses to start a KRaft node whose directories are not formatted. The cluster id is what
keeps nodes of different clusters apart: Raft and broker-registration requests carry it, and a
node answers INCONSISTENT_CLUSTER_ID to another cluster's. If each node invented its own id,
three nodes of one intended cluster would never agree on a leader.

suoi does what Kafka does, with two conveniences kept for a first start:
* a node whose quorum is only itself (`make run`'s config/server.properties, a node without
  process.roles, the test fixtures) formats itself with a fresh id (one INFO line says so);
* a node given `cluster.id` in its properties formats itself with that id.
A node of a multi-voter quorum with neither refuses to start, naming `suoi storage format`.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from suoi.atomic_file import write_atomically

META_FILE = "meta.properties"
FORMAT_HINT = "suoi storage format --cluster-id $(suoi storage random-uuid) --config FILE"


class StorageFormatError(RuntimeError):
    """A directory that is not formatted, or formatted for another cluster or node."""


def random_uuid() -> str:
    """A Kafka-style id: the 22-character URL-safe base64 of a random (type 4) UUID.

    Kafka never hands out the all-zero UUID nor its reserved metadata-topic id (…0001), and
    neither can start with '-' (a command line would read it as a flag)."""
    while True:
        raw = uuid.uuid4().bytes
        text = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        if not text.startswith("-") and int.from_bytes(raw, "big") > 1:
            return text


def valid_cluster_id(value: str) -> bool:
    """Whether `value` decodes as a Kafka Uuid (16 bytes of URL-safe base64)."""
    if len(value) != 22:
        return False
    try:
        return len(base64.urlsafe_b64decode(value + "==")) == 16
    except (ValueError, TypeError):
        return False


def read_meta(directory: Path) -> dict[str, str] | None:
    """The key/values of `directory`/meta.properties, or None when there is none."""
    path = directory / META_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


def write_meta(directory: Path, cluster_id: str, node_id: int) -> None:
    """Stamp `directory` (created if need be) for `cluster_id`/`node_id`, atomically.

    Keys suoi adds (`suoi.mode`) and an existing `directory.id` are kept."""
    directory.mkdir(parents=True, exist_ok=True)
    old = read_meta(directory) or {}
    values = {"version": "1", "cluster.id": cluster_id, "node.id": str(node_id),
              "directory.id": old.get("directory.id") or random_uuid()}
    values.update({k: v for k, v in old.items() if k not in values})
    write_meta_file(directory, "#suoi broker metadata\n" + "".join(f"{k}={v}\n" for k, v in values.items()))


def write_meta_file(directory: Path, text: str) -> None:
    """Replace `directory`/meta.properties durably, as Kafka's `PropertiesUtils.writePropertiesFile`
    (fsync, rename, fsync of the dir): written when a dir is formatted or migrated, never often,
    and a node whose meta.properties came back empty after a crash would not start."""
    write_atomically(directory / META_FILE, text)


@dataclass(frozen=True, slots=True)
class StorageLayout:
    """The directories of one node, and what it is: enough to format or check them."""

    directories: tuple[Path, ...]  # log.dirs, then metadata.log.dir when it is another one
    node_id: int
    configured_cluster_id: str | None  # `cluster.id` in the node's properties, if any
    #: True when the node may format itself with a fresh id: it is the only voter.
    may_self_format: bool

    @staticmethod
    def of(log_dirs: Iterable[Path], metadata_dir: Path | None, node_id: int, configured: str | None,
           voters: Iterable[int]) -> StorageLayout:
        dirs = list(dict.fromkeys(Path(d) for d in log_dirs))
        if metadata_dir is not None and Path(metadata_dir) not in dirs:
            dirs.append(Path(metadata_dir))
        self_only = set(voters) == {node_id}
        return StorageLayout(tuple(dirs), node_id, configured or None, self_only)

    def found(self) -> dict[Path, dict[str, str]]:
        """The meta.properties of each directory that has one."""
        return {d: m for d in self.directories if (m := read_meta(d)) is not None}


def stored_cluster_id(layout: StorageLayout) -> str | None:
    """The one cluster id the node's formatted directories agree on (None: none formatted).

    Raises StorageFormatError when they disagree with each other, with the configured
    `cluster.id`, or belong to another node.id."""
    found = layout.found()
    for d, meta in found.items():
        stored_node = meta.get("node.id")
        if stored_node is not None and stored_node.strip() != str(layout.node_id):
            raise StorageFormatError(f"{d / META_FILE} belongs to node.id={stored_node}, but this node is "
                                     f"node.id={layout.node_id}")
    ids = {meta["cluster.id"]: d for d, meta in found.items() if meta.get("cluster.id")}
    if len(ids) > 1:
        named = ", ".join(f"{cid} in {d}" for cid, d in ids.items())
        raise StorageFormatError(f"the log directories of node {layout.node_id} belong to different clusters "
                                 f"({named}); format them with one id")
    stored = next(iter(ids), None)
    if stored is not None and layout.configured_cluster_id and stored != layout.configured_cluster_id:
        raise StorageFormatError(
            f"cluster.id={layout.configured_cluster_id} in the configuration, but {ids[stored] / META_FILE} "
            f"says cluster.id={stored}: this node's data belongs to another cluster. Remove cluster.id from "
            f"the configuration (or set it to {stored}), or point log.dirs at an empty directory")
    return stored


def format_storage(layout: StorageLayout, cluster_id: str, *, ignore_formatted: bool = False) -> list[str]:
    """`kafka-storage.sh format`: stamp every directory with `cluster_id`; the lines to print.

    A directory already formatted is refused (it may hold another cluster's data) unless
    `ignore_formatted`, and then only if it belongs to the same cluster and node."""
    if not valid_cluster_id(cluster_id):
        raise StorageFormatError(f"cluster id {cluster_id!r} is not a Kafka Uuid (22 characters of URL-safe "
                                 "base64, as `suoi storage random-uuid` prints)")
    if layout.configured_cluster_id and layout.configured_cluster_id != cluster_id:
        raise StorageFormatError(f"--cluster-id {cluster_id} disagrees with cluster.id="
                                 f"{layout.configured_cluster_id} in the configuration")
    found = layout.found()
    if found and not ignore_formatted:
        first = next(iter(found))
        raise StorageFormatError(f"Log directory {first} is already formatted. Use --ignore-formatted to ignore "
                                 "this directory and format the others.")
    for d, meta in found.items():
        if meta.get("cluster.id") != cluster_id:
            raise StorageFormatError(f"Log directory {d} is already formatted for cluster.id="
                                     f"{meta.get('cluster.id')}, not {cluster_id}: it belongs to another cluster")
    stored_cluster_id(layout)  # same node everywhere
    todo = [d for d in layout.directories if d not in found]
    if not todo:
        return ["All of the log directories are already formatted."]
    lines = []
    for d in todo:
        write_meta(d, cluster_id, layout.node_id)
        lines.append(f"Formatting {d} with cluster.id {cluster_id} (node.id {layout.node_id}).")
    return lines


def ensure_formatted(layout: StorageLayout) -> tuple[str, str | None]:
    """The node's cluster id at start-up, formatting what it may; (id, a line to log or None).

    Raises StorageFormatError, whose message is the one ERROR line to print, when the node
    must be formatted by hand first or its directories disagree."""
    stored = stored_cluster_id(layout)
    cluster_id = stored or layout.configured_cluster_id
    note = None
    if cluster_id is None:
        if not layout.may_self_format:
            raise StorageFormatError(
                f"node {layout.node_id} is not formatted: {', '.join(map(str, layout.directories))}: no "
                f"meta.properties, and no cluster.id in its configuration; as one voter of several it must "
                f"not invent one (the others would each invent their own, and never form a quorum). Format "
                f"every node with one cluster id first: {FORMAT_HINT}")
        cluster_id = random_uuid()
        note = (f"formatted {', '.join(map(str, layout.directories))} with a new cluster.id={cluster_id} "
                f"(node {layout.node_id} is its own quorum)")
    missing = [d for d in layout.directories if read_meta(d) is None]
    for d in missing:
        write_meta(d, cluster_id, layout.node_id)
    if note is None and missing and stored is None:
        note = f"formatted {', '.join(map(str, missing))} with cluster.id={cluster_id} from the configuration"
    return cluster_id, note
