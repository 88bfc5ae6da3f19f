"""Refuse, at start, every setting that asks for TLS, SASL or an authorizer suoi lacks.

suoi speaks PLAINTEXT only (the security issue brings TLS/SASL); its one authorizer is Kafka's
StandardAuthorizer (`suoi.authorizer`), any other `authorizer.class.name` is refused. A broker told to
listen on SSL that served plaintext instead would read a TLS ClientHello as a 369 MB frame,
and one told to authorize that did not would grant everyone everything; so such a setting
stops the node before it binds anything, naming the setting (Kafka's rule: a setting we do
not implement is refused loudly, never ignored).
"""

from __future__ import annotations

from collections.abc import Mapping

from suoi.authorizer.standard import AUTHORIZER_CLASS
from suoi.configdefs import unimplemented_security_feature

#: Kafka's security protocols; only PLAINTEXT is served.
SECURITY_PROTOCOLS = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})

class UnsupportedSecuritySetting(ValueError):
    """A setting asks for a security feature suoi does not have: the node must not start."""


def check_security_settings(values: Mapping[str, str]) -> None:
    """Raise UnsupportedSecuritySetting (one line naming the setting) if any property asks for
    TLS/SASL/an authorizer, or any listener's security protocol is not PLAINTEXT."""
    for key in sorted(values):
        value = str(values[key]).strip()
        if not value:
            continue
        if key == "authorizer.class.name":
            if value != AUTHORIZER_CLASS:  # Kafka's KRaft authorizer is the one implemented
                raise _refuse(f"{key}={value}", what=f"an authorizer other than {AUTHORIZER_CLASS}")
            if not str(values.get("process.roles", "")).strip():  # ACLs live in the metadata log
                raise UnsupportedSecuritySetting(
                    f"{key}={value}: an authorizer is not supported on a standalone node: ACLs are kept in the "
                    "KRaft metadata log, set process.roles")
        elif key == "max.connection.creation.rate":  # connection limits suoi does not have (yet)
            raise _refuse(key, what="connection creation rate limits")
        elif key == "security.inter.broker.protocol":
            if value.upper() != "PLAINTEXT":
                raise _refuse(f"{key}={value}")
        elif key != "listener.security.protocol.map" and unimplemented_security_feature(key) is not None:
            # One table (configdefs) says which settings are security ones, at start and at run time.
            raise _refuse(key)  # named by key only: the value may be a password or a private key
    protocol_map = _protocol_map(values.get("listener.security.protocol.map", ""))
    for key in ("listeners", "advertised.listeners"):
        for item in filter(None, (x.strip() for x in str(values.get(key, "")).split(","))):
            name = item.split("://", 1)[0].strip().upper() if "://" in item else "PLAINTEXT"
            protocol = protocol_map.get(name, name if name in SECURITY_PROTOCOLS else "PLAINTEXT")
            if protocol != "PLAINTEXT":
                via = f" (listener.security.protocol.map maps {name} to {protocol})" if name in protocol_map else ""
                raise _refuse(f"{key}={item}{via}", what=f"security protocol {protocol}")


def _protocol_map(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in filter(None, (x.strip() for x in raw.split(","))):
        name, sep, protocol = entry.partition(":")
        protocol = protocol.strip().upper()
        if not sep or not name.strip() or protocol not in SECURITY_PROTOCOLS:
            raise ValueError(f"listener.security.protocol.map entry {entry!r} is not NAME:PROTOCOL "
                             f"with PROTOCOL one of {', '.join(sorted(SECURITY_PROTOCOLS))}")
        out[name.strip().upper()] = protocol
    return out


def _refuse(setting: str, what: str = "TLS/SASL/authorization") -> UnsupportedSecuritySetting:
    return UnsupportedSecuritySetting(
        f"{setting}: {what} is not supported by this version of suoi (PLAINTEXT listeners only); "
        f"remove the setting to start")
