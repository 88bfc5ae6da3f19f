"""The flush at a roll, as a real process on a real disk: with the default flush settings a roll
fsyncs the rolled segments off the event loop and moves the recovery point to the new segment's
base, the periodic checkpoint writes it, so after a SIGKILL the next start re-scans only the
segments at or above it (not every retained one) and every record is there, in order."""

from __future__ import annotations

import re
from pathlib import Path

from suoi.log.recovery import RECOVERY_POINT_FILE
from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.integration.support import create_topic, produce, read_all

RECOVERY_LINE = re.compile(r"log recovery: (\d+) segments \((\d+) bytes\) re-scanned from their logs' recovery "
                           r"points, (\d+) loaded from their indexes")
TOPIC = "rolled"


def _recovery_point(directory: Path) -> int:
    try:
        return int((directory / RECOVERY_POINT_FILE).read_text().strip() or 0)
    except FileNotFoundError:
        return 0


def _bases(directory: Path) -> list[int]:
    return sorted(int(p.stem) for p in directory.glob("*.log"))


def _to_rescan(log_dir: Path) -> tuple[int, int]:
    """(segments a start after a crash re-scans, segments it loads from their indexes) over every
    partition of `log_dir`, from what is on disk: those holding offsets at or above their log's
    recovery point, and the last one of each log (`recovery.recover_segments`)."""
    scanned = loaded = 0
    for directory in log_dir.iterdir():
        if not directory.is_dir() or directory.name.startswith("__cluster_metadata") or "-" not in directory.name:
            continue  # the topics' metadata and the Raft log are no partitions
        bases, point = _bases(directory), _recovery_point(directory)
        for i, _ in enumerate(bases):
            if i == len(bases) - 1 or bases[i + 1] > point:
                scanned += 1
            else:
                loaded += 1
    return scanned, loaded


def test_after_a_sigkill_only_the_segments_above_the_recovery_point_are_rescanned(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "node", overrides={"log.flush.offset.checkpoint.interval.ms": "50"}).start()
    try:
        create_topic(broker.bootstrap, TOPIC, configs={"segment.bytes": "1000"})
        values = [b"%03d" % i * 40 for i in range(48)]  # ~500 bytes a batch of 4: a roll every 2 batches
        for i in range(0, len(values), 4):
            assert produce(broker.bootstrap, TOPIC, 0, build_batch([(None, v) for v in values[i:i + 4]])).error_code == 0
        directory = broker.log_dirs[0] / f"{TOPIC}-0"
        bases = _bases(directory)
        assert len(bases) >= 6, bases
        # Nothing flushes by size or time (the defaults): the rolls alone move the checkpointed point.
        wait_until(lambda: _recovery_point(directory) >= bases[-1], message="the recovery point at the active segment")
        assert broker.kill() == -9

        scanned, loaded = _to_rescan(broker.log_dirs[0])
        assert loaded >= len(bases) - 1  # this log's rolled segments are all below its recovery point
        restarted_at = len(broker.logs())
        broker.start()
        found = RECOVERY_LINE.search(broker.logs()[restarted_at:])
        assert found, broker.logs()[restarted_at:]
        assert (int(found[1]), int(found[3])) == (scanned, loaded)
        assert [v for _, v in read_all(broker.bootstrap, TOPIC)] == values
        assert [o for o, _ in read_all(broker.bootstrap, TOPIC)] == list(range(len(values)))
    finally:
        broker.close()
