"""A node's stop and the next start, as real processes: SIGTERM leaves each log dir marked as
cleanly stopped (everything flushed), so the restart loads the logs from their indexes and
removes the marker; a SIGKILL leaves none, so the next start recovers the tails. The data is
all there either way."""

from __future__ import annotations

from pathlib import Path

from suoi.log.clean_shutdown import MARKER
from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker
from tests.integration.support import create_topic, produce, read_all

SKIPPED = "stopped cleanly: their logs' last segments were not re-scanned"


def test_sigterm_marks_the_log_dir_clean_and_sigkill_does_not(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "node").start()
    try:
        create_topic(broker.bootstrap, "marked", 3)
        for p in range(3):
            for i in range(4):
                assert produce(broker.bootstrap, "marked", p, build_batch([(None, b"v%d" % i)])).error_code == 0
        marker = broker.log_dirs[0] / MARKER
        assert broker.stop() == 0
        assert marker.read_text() == "clean\n"

        broker.start()
        assert SKIPPED in broker.logs() and not marker.exists()
        assert [len(read_all(broker.bootstrap, "marked", p)) for p in range(3)] == [4, 4, 4]
        assert produce(broker.bootstrap, "marked", 0, build_batch([(None, b"after")])).error_code == 0
        broker.kill()
        assert not marker.exists()

        restarted_at = len(broker.logs())
        broker.start()
        assert SKIPPED not in broker.logs()[restarted_at:]  # a crash: the tails were recovered
        assert [v for _, v in read_all(broker.bootstrap, "marked", 0)] == [b"v0", b"v1", b"v2", b"v3", b"after"]
    finally:
        broker.close()
