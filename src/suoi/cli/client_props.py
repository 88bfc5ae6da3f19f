"""A tool's client properties (`--command-config`, `--producer.config`, ...) in either dialect.

Kafka's tools read a Java client's properties (``sasl.jaas.config``, ``ssl.truststore.*``,
``ssl.keystore.*``); suoi's tools run librdkafka, which has its own names (``sasl.username``,
``ssl.ca.location``, ...) and refuses the Java ones. So that one file (e.g. the
``admin.properties`` of ``suoi cluster up --secure``) works with ``kafka-topics.sh`` and
``suoi topics`` alike, the Java names are translated here into librdkafka's; librdkafka's own
names pass unchanged and win when both are given. What librdkafka cannot do (a JKS or PKCS12
truststore, a JAAS login module other than PLAIN/SCRAM or KIP-768's OAUTHBEARER client
credentials) is refused with one line saying how
to convert it, never dropped silently.
"""

from __future__ import annotations

from suoi.cli.errors import CliError

__all__ = ["librdkafka_names"]

#: JAAS login modules whose username/password are librdkafka's sasl.username/sasl.password.
_PASSWORD_MODULES = ("PlainLoginModule", "ScramLoginModule")


def librdkafka_names(props: dict[str, str]) -> dict[str, str]:
    """``props`` with Kafka's Java client names replaced by librdkafka's (a new dict)."""
    out = dict(props)
    _jaas(out)
    _truststore(out)
    _keystore(out)
    if out.get("ssl.endpoint.identification.algorithm", "x").strip() == "":  # Java's "off"
        out["ssl.endpoint.identification.algorithm"] = "none"
    return out


def _jaas(out: dict[str, str]) -> None:
    text = out.pop("sasl.jaas.config", None)
    if text is None:
        return
    from suoi.security.jaas import JaasError, parse_jaas

    try:
        jaas = parse_jaas(text)
    except JaasError as exc:  # names the key, never the value
        raise CliError(str(exc)) from None
    if jaas.login_module.endswith("OAuthBearerLoginModule") and _oidc(out, jaas.options):
        return
    if not jaas.login_module.endswith(_PASSWORD_MODULES):
        raise CliError(f"sasl.jaas.config: {jaas.login_module} is not supported by the tools (librdkafka); "
                       "give librdkafka's settings instead (sasl.mechanism, sasl.oauthbearer.*)")
    if "username" in jaas.options:
        out.setdefault("sasl.username", jaas.options["username"])
    if "password" in jaas.options:
        out.setdefault("sasl.password", jaas.options["password"])


def _oidc(out: dict[str, str], options: dict[str, str]) -> bool:
    """KIP-768's login callback (tokens from sasl.oauthbearer.token.endpoint.url with the JAAS
    clientId/clientSecret/scope) is librdkafka's sasl.oauthbearer.method=oidc; False for any other
    OAUTHBEARER login (refused by the caller)."""
    from suoi.security.oauth_login import LOGIN_HANDLERS

    if out.get("sasl.login.callback.handler.class", "").strip() not in LOGIN_HANDLERS:
        return False
    del out["sasl.login.callback.handler.class"]
    out.setdefault("sasl.oauthbearer.method", "oidc")
    for java, librdkafka in (("clientId", "client.id"), ("clientSecret", "client.secret"), ("scope", "scope")):
        if java in options:
            out.setdefault(f"sasl.oauthbearer.{librdkafka}", options[java])
    return True


def _truststore(out: dict[str, str]) -> None:
    kind = out.pop("ssl.truststore.type", "PEM").strip().upper() or "PEM"
    location = out.pop("ssl.truststore.location", None)
    inline = out.pop("ssl.truststore.certificates", None)
    out.pop("ssl.truststore.password", None)  # a PEM truststore has none
    if location is None and inline is None:
        return
    if kind != "PEM":
        raise CliError(f"ssl.truststore.type={kind}: the tools (librdkafka) read PEM truststores only; convert it "
                       "(keytool -exportcert -rfc, or openssl pkcs12 -nokeys) and set ssl.truststore.type=PEM")
    if location is not None:
        out.setdefault("ssl.ca.location", location)
    else:
        out.setdefault("ssl.ca.pem", str(inline))


def _keystore(out: dict[str, str]) -> None:
    kind = out.pop("ssl.keystore.type", "").strip().upper()
    if kind == "JKS":
        raise CliError("ssl.keystore.type=JKS: the tools (librdkafka) read PKCS12 or PEM keystores; convert it with "
                       "keytool -importkeystore -deststoretype PKCS12")
    if kind != "PEM":  # PKCS12: ssl.keystore.location/.password are librdkafka's names too
        return
    location = out.pop("ssl.keystore.location", None)
    if location is not None:  # one PEM file holding the key and the chain
        out.setdefault("ssl.certificate.location", location)
        out.setdefault("ssl.key.location", location)
    chain, key = out.pop("ssl.keystore.certificate.chain", None), out.pop("ssl.keystore.key", None)
    if chain is not None:
        out.setdefault("ssl.certificate.pem", chain)
    if key is not None:
        out.setdefault("ssl.key.pem", key)
