"""A listener's keystore and truststore changed at run time through AlterConfigs /
IncrementalAlterConfigs of a broker, as Kafka allows (``listener.name.<l>.ssl.keystore.location``
and the rest of SslConfigs' reconfigurable keys, per broker, with the listener prefix only).

* `dynamic_ssl_key(key)`: (listener, ssl key) for a key that may be changed so, else None;
* `check_update(values, changes)`: before the change is accepted, each listener it touches gets
  the complete server context it would have built (keystore, key password, truststore); a
  broken keystore is refused with TlsConfigError naming keys, never values (Kafka validates the
  new keystore the same way before it takes it);
* `DynamicTls.apply()`: after the node's config changed, loads the new keystore/truststore of
  each TLS listener whose settings differ into its live context (new connections get the new
  certificate; open ones keep theirs). A file that cannot be loaded by then is logged and the
  listener keeps its certificate.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from suoi.configdefs import RECONFIGURABLE_SSL, dynamic_ssl_key
from suoi.security.listeners import ListenerSecurity, setting
from suoi.security.reload import reload_listener
from suoi.security.tls import server_context

__all__ = ["RECONFIGURABLE_SSL", "DynamicTls", "check_update", "dynamic_ssl_key"]

def check_update(values: Mapping[str, object], changes: Mapping[str, str | None]) -> None:
    """Raise TlsConfigError if a listener touched by ``changes`` (key -> new value, None: deleted)
    could not build its server context with them."""
    merged: dict[str, object] = dict(values)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    for listener in sorted({found[0] for key in changes if (found := dynamic_ssl_key(key)) is not None}):
        server_context(functools.partial(setting, merged, listener), listener)


class DynamicTls:
    """The TLS listeners of a node, and the keystore/truststore settings each was built with."""

    def __init__(self, securities: Iterable[ListenerSecurity]) -> None:
        self._listeners = [s for s in securities if s.ssl_context is not None]
        self._seen = {s.name: self._settings(s) for s in self._listeners}

    @staticmethod
    def _settings(security: ListenerSecurity) -> tuple[str | None, ...]:
        return tuple(security.settings(k) for k in sorted(RECONFIGURABLE_SSL))

    def apply(self) -> list[str]:
        """Reload each listener whose settings changed (they are read live); the names reloaded."""
        reloaded = []
        for security in self._listeners:
            current = self._settings(security)
            if current == self._seen[security.name]:
                continue
            self._seen[security.name] = current
            assert security.ssl_context is not None
            if reload_listener(security.ssl_context, security.settings, security.name, "set through AlterConfigs"):
                reloaded.append(security.name)
        return reloaded
