"""What suoi's own client (``suoi.client``) needs to reach a secured listener."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from suoi.security.sasl import SaslClientCredentials

__all__ = ["PLAINTEXT", "ClientSecurity"]


@dataclass(frozen=True, slots=True)
class ClientSecurity:
    #: TLS (SSL / SASL_SSL listeners), or None for plaintext.
    ssl_context: ssl.SSLContext | None = None
    #: Send the peer's host name for SNI and verify it (ssl.endpoint.identification.algorithm=https).
    check_hostname: bool = False
    #: SASL (SASL_PLAINTEXT / SASL_SSL listeners), or None.
    sasl: SaslClientCredentials | None = None

    @property
    def protocol(self) -> str:
        if self.sasl is not None:
            return "SASL_SSL" if self.ssl_context is not None else "SASL_PLAINTEXT"
        return "SSL" if self.ssl_context is not None else "PLAINTEXT"


PLAINTEXT = ClientSecurity()
