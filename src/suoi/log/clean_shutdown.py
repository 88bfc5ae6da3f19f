"""The clean-shutdown marker of a log dir (Kafka's ``.kafka_cleanshutdown``).

A clean stop writes ``clean-shutdown`` into a log dir once every log there was flushed
(`flushing.flush_logs`) and closed without an error - never before, and not at all when
something failed or the flush ran out of time. The next start reads it, opens that dir's
logs trusting their indexes also for the last segment (no CRC re-scan of every tail,
`recovery.recover_segments`), and then removes it - durably, before anything is written -
so a crash from then on is recovered as any unclean stop is.
"""

from __future__ import annotations

import logging
from pathlib import Path

from suoi.atomic_file import fsync_dir, write_atomically

__all__ = ["MARKER", "remove_markers", "take_markers", "write_marker"]

logger = logging.getLogger("suoi.log")

MARKER = "clean-shutdown"


def write_marker(log_dir: Path) -> bool:
    """Mark `log_dir` as cleanly stopped (temp file, fsync, rename, fsync of the dir); False
    (one WARNING) if that failed: the next start then recovers the dir's tails, as after a crash."""
    try:
        write_atomically(log_dir / MARKER, "clean\n")
    except OSError as e:
        logger.warning("cannot mark %s as cleanly stopped (its next start recovers it): %s", log_dir, e)
        return False
    return True


def take_markers(log_dirs: list[Path]) -> set[Path]:
    """The dirs whose last stop was clean (`remove_markers` deletes the markers once their logs
    are open)."""
    return {d for d in log_dirs if (d / MARKER).is_file()}


def remove_markers(log_dirs: set[Path]) -> None:
    """Delete the markers (and fsync the dirs): from now on a crash must be recovered. A marker
    that cannot be removed would let a later crash pass for a clean stop: that raises."""
    for d in log_dirs:
        (d / MARKER).unlink(missing_ok=True)
        fsync_dir(d)
