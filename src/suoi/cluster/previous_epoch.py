"""The broker epoch this node last registered with, kept in its metadata dir.

Why: a broker killed with SIGKILL leaves its registration unfenced at the controller, and a
newly active controller gives every registration a whole session (Kafka's activation does the
same). The restarted process has a new incarnation id, so the controller refused it as
DUPLICATE_BROKER_REGISTRATION until broker.session.timeout.ms (9 s) had passed: a combined
node (`make run`) killed and started again served nothing for ~10 s. The restarted broker
sends this epoch as BrokerRegistration's ``previous_broker_epoch`` (KIP-966's field); the
controller lets a registration that names the current registration's epoch replace it at once
(`QuorumController.register_broker`). Only the process that got that epoch wrote it here, in
its own data dir (the dir's `.lock`, `log.dir_lock`, keeps a second process off it while the
first runs), so a genuinely different live broker with the same id does not know it and is
still refused. Kafka writes the previous epoch only at a clean stop (its clean shutdown
file); suoi records it at every registration so that a crash's successor knows it too.

The file holds one decimal number; written atomically (temp file, fsync, rename, fsync of the
dir) off the event loop. Unreadable or absent: -1 (the controller then treats the start as
Kafka does, waiting out the old session).
"""

from __future__ import annotations

import logging
from pathlib import Path

from suoi.atomic_file import write_atomically

__all__ = ["FILE_NAME", "read_previous_epoch", "record_epoch"]

log = logging.getLogger("suoi.cluster")

FILE_NAME = "broker-epoch"


def read_previous_epoch(metadata_dir: Path) -> int:
    """The epoch recorded by the last process on this dir, or -1."""
    try:
        text = (metadata_dir / FILE_NAME).read_text().strip()
    except FileNotFoundError:
        return -1
    except OSError as exc:
        log.warning("cannot read %s (registering without a previous broker epoch): %s",
                    metadata_dir / FILE_NAME, exc)
        return -1
    try:
        epoch = int(text)
    except ValueError:
        log.warning("%s holds no broker epoch (%r); registering without one", metadata_dir / FILE_NAME, text[:40])
        return -1
    return epoch if epoch >= 0 else -1


def record_epoch(metadata_dir: Path, epoch: int) -> bool:
    """Durably record ``epoch`` (blocking: run it on a thread). False (one WARNING) on failure:
    the next start after a crash then waits out the old session, as before."""
    path = metadata_dir / FILE_NAME
    try:
        write_atomically(path, f"{epoch}\n")
    except OSError as exc:
        log.warning("cannot record broker epoch %d in %s: %s", epoch, path, exc)
        return False
    return True
