"""Security settings at start: which listener speaks which protocol, and what is refused.

suoi serves PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL listeners (`suoi.security`) with Kafka's
property names, and its one authorizer is Kafka's StandardAuthorizer (`suoi.authorizer`). What it
does not implement yet -- other authorizer classes, delegation
tokens, GSSAPI -- still stops the node
before it binds anything, naming the setting (Kafka's rule: a setting we do not implement is
refused loudly, never ignored: a broker that seems to authorize but grants everyone everything
is worse than an error). One table
(`configdefs.unimplemented_security_feature`) says which settings those are, at start and for
AlterConfigs.
"""

from __future__ import annotations

from collections.abc import Mapping

from suoi.authorizer.standard import AUTHORIZER_CLASS
from suoi.configdefs import is_listener_security_key, unimplemented_security_feature

#: Kafka's security protocols.
SECURITY_PROTOCOLS = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})
#: Kafka's SecurityProtocol ids (BrokerRegistration, RegisterBrokerRecord)
SECURITY_PROTOCOL_IDS = {"PLAINTEXT": 0, "SSL": 1, "SASL_PLAINTEXT": 2, "SASL_SSL": 3}

__all__ = ["SECURITY_PROTOCOLS", "SECURITY_PROTOCOL_IDS", "UnsupportedSecuritySetting", "check_security_settings",
           "is_listener_security_key", "listener_protocol", "protocol_map"]


class UnsupportedSecuritySetting(ValueError):
    """A setting asks for a security feature suoi does not have: the node must not start."""


def check_security_settings(values: Mapping[str, str]) -> None:
    """Raise UnsupportedSecuritySetting (one line naming the setting) if any property asks for a
    security feature suoi lacks; ValueError for a listener protocol map that does not parse."""
    for key in sorted(values):
        value = str(values[key]).strip()
        if not value:
            continue
        if key == "authorizer.class.name":
            if value != AUTHORIZER_CLASS:  # Kafka's KRaft authorizer is the one implemented
                raise _refuse(f"{key}={value}", what=f"an authorizer other than {AUTHORIZER_CLASS}")
        elif key != "listener.security.protocol.map" and unimplemented_security_feature(key) is not None:
            # named by key only: the value may be a password or a private key
            raise _refuse(key, what=unimplemented_security_feature(key) or "")
    protocol_map(values)  # a bad map is an error at start
    protocol = str(values.get("security.inter.broker.protocol") or "PLAINTEXT").strip().upper()
    if protocol not in SECURITY_PROTOCOLS:
        raise ValueError(f"security.inter.broker.protocol={protocol}: expected one of "
                         f"{', '.join(sorted(SECURITY_PROTOCOLS))}")


def protocol_map(values: Mapping[str, object]) -> dict[str, str]:
    """listener.security.protocol.map as {LISTENER: PROTOCOL}."""
    out: dict[str, str] = {}
    for entry in filter(None, (x.strip() for x in str(values.get("listener.security.protocol.map") or "").split(","))):
        name, sep, protocol = entry.partition(":")
        protocol = protocol.strip().upper()
        if not sep or not name.strip() or protocol not in SECURITY_PROTOCOLS:
            raise ValueError(f"listener.security.protocol.map entry {entry!r} is not NAME:PROTOCOL "
                             f"with PROTOCOL one of {', '.join(sorted(SECURITY_PROTOCOLS))}")
        out[name.strip().upper()] = protocol
    return out


def listener_protocol(values: Mapping[str, object], name: str) -> str:
    """The security protocol of listener ``name``: its map entry, else the protocol it is named
    after, else PLAINTEXT (Kafka's default for a controller listener missing from the map)."""
    name = name.upper()
    return protocol_map(values).get(name, name if name in SECURITY_PROTOCOLS else "PLAINTEXT")


def _refuse(setting: str, what: str) -> UnsupportedSecuritySetting:
    return UnsupportedSecuritySetting(
        f"{setting}: {what} is not supported by this version of suoi; remove the setting to start")
