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


def from_client_properties(props: dict[str, str]) -> ClientSecurity:
    """ClientSecurity from a Kafka client's properties (a tool's --command-config, librdkafka's
    names): security.protocol, ssl.ca.location, ssl.certificate.location, ssl.key.location,
    ssl.key.password, ssl.endpoint.identification.algorithm, sasl.mechanism(s), sasl.username,
    sasl.password; or the Java client's: ssl.truststore.*/ssl.keystore.* (PEM, PKCS12) and
    sasl.jaas.config (its username and password options)."""
    protocol = props.get("security.protocol", "PLAINTEXT").strip().upper()
    ctx, check = None, False
    if protocol in ("SSL", "SASL_SSL") and any(k.startswith(("ssl.truststore.", "ssl.keystore.")) for k in props):
        from suoi.security.tls import client_context

        ctx, check = client_context(props.get, "client")
    elif protocol in ("SSL", "SASL_SSL"):
        ctx = ssl.create_default_context(cafile=props.get("ssl.ca.location") or None)
        check = props.get("ssl.endpoint.identification.algorithm", "https").strip().lower() == "https"
        ctx.check_hostname = check
        if props.get("ssl.certificate.location"):
            ctx.load_cert_chain(props["ssl.certificate.location"], props.get("ssl.key.location") or None,
                                props.get("ssl.key.password") or None)
    creds = None
    if protocol.startswith("SASL_"):
        mechanism = (props.get("sasl.mechanism") or props.get("sasl.mechanisms") or "PLAIN").strip().upper()
        username, password = props.get("sasl.username"), props.get("sasl.password")
        if username is None and props.get("sasl.jaas.config"):
            from suoi.security.jaas import parse_jaas

            options = parse_jaas(props["sasl.jaas.config"]).options
            username, password = options.get("username"), options.get("password")
        creds = SaslClientCredentials(mechanism, username or "", password or "")
    elif protocol != "PLAINTEXT" and protocol != "SSL":
        raise ValueError(f"security.protocol={protocol}: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    return ClientSecurity(ctx, check, creds)
