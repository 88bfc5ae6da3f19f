"""The admin endpoint's settings (`admin.*` properties), checked before the node binds anything.

`admin.listeners=http://127.0.0.1:9644[,http://[::1]:9644]` turns the endpoint on (unset: off);
port 0 picks a free port (logged). TLS (`https://`) and authentication (`admin.auth.type`
other than `none`) are not implemented yet, so asking for them stops the node at start with
one line, rather than serving plaintext or unauthenticated (the team's rule for settings we
do not implement).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_LISTENER = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>\[[0-9A-Fa-f:.]*\]|[^:/\[\]]*):(?P<port>\d{1,5})/?$")


class AdminSettingError(RuntimeError):
    """An `admin.*` setting the node cannot honour: it must not start."""


@dataclass(frozen=True, slots=True)
class AdminSettings:
    listeners: tuple[tuple[str, int], ...]  # (host, port); empty: the endpoint is off
    log_partitions_max: int  # admin.metrics.log.partitions.max

    @property
    def enabled(self) -> bool:
        return bool(self.listeners)

    @staticmethod
    def from_config(config: Any) -> AdminSettings:
        auth = str(config.get("admin.auth.type") or "none").strip().lower()
        if auth != "none":
            raise AdminSettingError(f"admin.auth.type={auth}: authentication on the admin endpoint is not "
                                    "supported by this version of suoi (only 'none'); refusing to start")
        raw = str(config.get("admin.listeners") or "")
        listeners = []
        for item in filter(None, (x.strip() for x in raw.split(","))):
            m = _LISTENER.match(item)
            if m is None:
                raise AdminSettingError(f"admin.listeners: {item!r} is not http://host:port")
            scheme = m["scheme"].lower()
            if scheme == "https":
                raise AdminSettingError(f"admin.listeners={item}: TLS on the admin endpoint is not supported by "
                                        "this version of suoi (http:// only); refusing to start")
            if scheme != "http":
                raise AdminSettingError(f"admin.listeners: {item!r}: scheme {scheme} is not http")
            host = m["host"][1:-1] if m["host"].startswith("[") else m["host"]
            listeners.append((host, int(m["port"])))
        return AdminSettings(tuple(listeners), config.get_int("admin.metrics.log.partitions.max"))
