"""Certificate reload without restart: a listener's keystore and truststore files are watched and
loaded into its live TLS context when they change (as Redpanda does; Kafka reloads them when the
same ``listener.name.X.ssl.keystore.location`` is set again through AlterConfigs: `suoi.security.dynamic`).

Renewed certificates are the common case: write the new keystore file (atomically, e.g. rename)
and new connections get the new certificate within ``TLS_RELOAD_CHECK_S``; open connections keep
theirs. The new files are checked by building a complete context first: a broken or half-written
keystore is logged once per change and the listener keeps its current certificate. Trusted CAs
are only ever added (``ssl`` cannot remove one from a context): dropping a CA needs a restart.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from suoi.security.tls import TlsConfigError, reload_server_context

__all__ = ["TLS_RELOAD_CHECK_S", "TlsReloader", "reload_listener"]

log = logging.getLogger("suoi.security")

#: How often the keystore/truststore files of TLS listeners are checked for changes (seconds).
TLS_RELOAD_CHECK_S = 30.0

Settings = Callable[[str], str | None]


@dataclass
class _Watched:
    listener: str
    ctx: ssl.SSLContext
    settings: Settings
    files: tuple[str, ...]
    stamps: tuple[tuple[int, int] | None, ...] = field(default=())


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class TlsReloader:
    """``check()`` reloads every watched listener whose files changed since the last check."""

    def __init__(self, listeners: Iterable[tuple[str, ssl.SSLContext, Settings]]) -> None:
        self._watched = []
        for name, ctx, settings in listeners:
            files = tuple(p for p in (settings("ssl.keystore.location"), settings("ssl.truststore.location")) if p)
            if files:
                self._watched.append(_Watched(name, ctx, settings, files, tuple(_stamp(f) for f in files)))

    def __bool__(self) -> bool:
        return bool(self._watched)

    def check(self) -> list[str]:
        """Reload what changed; the names of the listeners reloaded."""
        reloaded = []
        for w in self._watched:
            stamps = tuple(_stamp(f) for f in w.files)
            if stamps == w.stamps:
                continue
            w.stamps = stamps
            if reload_listener(w.ctx, w.settings, w.listener, f"its files changed ({', '.join(w.files)})"):
                reloaded.append(w.listener)
        return reloaded


def reload_listener(ctx: ssl.SSLContext, settings: Settings, listener: str, why: str) -> bool:
    """Load the listener's keystore/truststore into its live context; on failure, log it (keys
    only) and keep the current certificate."""
    try:
        reload_server_context(ctx, settings, listener)
    except TlsConfigError as exc:
        log.warning("listener %s: %s but its keystore/truststore cannot be loaded (%s); keeping the current "
                    "certificate", listener, why, exc)
        return False
    log.info("listener %s: reloaded its keystore/truststore: %s", listener, why)
    return True
