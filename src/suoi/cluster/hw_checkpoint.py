"""The leaders' high watermarks on disk: Kafka's `replication-offset-checkpoint` file in each
log dir (a version line `0`, a count, then `topic partition offset` lines), written atomically
every replica.high.watermark.checkpoint.interval.ms and at shutdown, read at start (see
`ReplicaManager`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("suoi.replication")

CHECKPOINT_FILE = "replication-offset-checkpoint"


def read_checkpoint(path: Path) -> dict[tuple[str, int], int]:
    """Kafka's offset checkpoint file: version line `0`, a count, then `topic partition offset`."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return {}
    out: dict[tuple[str, int], int] = {}
    try:
        if not lines or lines[0].strip() != "0":
            raise ValueError(f"unknown version line {lines[:1]}")
        count = int(lines[1])
        if len(lines) - 2 < count:
            raise ValueError(f"{count} entries announced, {len(lines) - 2} present")
        for line in lines[2:2 + count]:
            topic, partition, offset = line.rsplit(" ", 2)
            out[(topic, int(partition))] = int(offset)
    except (ValueError, IndexError) as exc:
        log.warning("ignoring malformed %s: %s", path, exc)
        return {}
    return out


def write_checkpoint(path: Path, entries: dict[tuple[str, int], int]) -> None:
    """Write atomically: a temporary file, fsync, rename."""
    body = f"0\n{len(entries)}\n" + "".join(f"{t} {p} {o}\n" for (t, p), o in sorted(entries.items()))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
