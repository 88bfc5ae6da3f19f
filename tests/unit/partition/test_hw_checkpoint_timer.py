"""The HW checkpoint's timer at idle (issue 19): an unchanged checkpoint is not rewritten."""

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace

from suoi.model import TopicPartition
from suoi.partition.hw_checkpoint import CHECKPOINT_FILE, HighWatermarkCheckpoints, read_checkpoint


def test_the_timer_writes_a_changed_high_watermark_and_skips_an_unchanged_one(tmp_path: Path) -> None:
    """Issue 19 (a node at idle): every interval the checkpoint is written if an HW moved, and
    not rewritten (temp file, fsync, rename) while none did."""
    plog = SimpleNamespace(directory=tmp_path / "orders-0", high_watermark=5)  # what _entries reads of a log
    checkpoints = HighWatermarkCheckpoints([tmp_path], lambda topic, partition: plog)  # type: ignore[arg-type,return-value]
    checkpoints.initialised.add(TopicPartition("orders", 0))
    path = tmp_path / CHECKPOINT_FILE
    interval = 0.02

    async def until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 10
        while not condition():
            assert time.monotonic() < deadline, what
            await asyncio.sleep(interval / 2)

    async def scenario() -> None:
        task = asyncio.create_task(checkpoints.run(interval))
        try:
            await until(lambda: read_checkpoint(path) == {("orders", 0): 5}, "the first checkpoint")
            written = path.stat().st_ino  # each write renames a new file over it: a new inode
            started = time.monotonic()
            await until(lambda: time.monotonic() - started > 10 * interval, "ten intervals")
            assert path.stat().st_ino == written, "an unchanged HW was written again"
            assert not path.with_name(CHECKPOINT_FILE + ".tmp").exists()
            plog.high_watermark = 9
            await until(lambda: read_checkpoint(path) == {("orders", 0): 9}, "the moved HW checkpointed")
            assert path.stat().st_ino != written
        finally:
            task.cancel()

    asyncio.run(scenario())
