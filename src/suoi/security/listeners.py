"""Per-listener security, resolved from the node's properties the way Kafka resolves them.

A listener's security protocol comes from ``listener.security.protocol.map`` (a listener named
after a protocol, e.g. ``SSL://``, needs no entry). Each ``ssl.*`` / ``sasl.*`` setting is read
first with the listener prefix ``listener.name.<listener, lower case>.`` and then without it;
JAAS configs also per mechanism: ``listener.name.<l>.<mechanism, lower case>.sasl.jaas.config``.

``listener_security`` builds what the server side of a listener needs (TLS context, SASL
mechanisms and PLAIN users, principal mapping); ``client_security`` what suoi's own client
needs to reach a listener of another node (the inter-broker listener for replica fetches, the
controller listener for the quorum, forwarding and heartbeats): TLS trust and
``sasl.mechanism.inter.broker.protocol`` / ``sasl.mechanism.controller.protocol`` with the
``username``/``password`` of that listener's JAAS config.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from suoi.config_security import listener_protocol
from suoi.security.client import PLAINTEXT, ClientSecurity
from suoi.security.jaas import JaasError, parse_jaas
from suoi.security.oauth_login import LOGIN_HANDLERS, login_settings, oauth_login
from suoi.security.oauthbearer import (
    JWKS_HANDLERS,
    UNSECURED_HANDLER,
    UNSECURED_LOGIN_HANDLER,
    UnsecuredValidator,
    Validator,
    unsecured_login_token,
)
from suoi.security.principal import ANONYMOUS, PrincipalMappingError, SslPrincipalMapper, certificate_dn
from suoi.security.sasl import CLIENT_MECHANISMS, SUPPORTED_MECHANISMS, SaslClientCredentials
from suoi.security.tls import client_context, keystore_certificate, server_context

if TYPE_CHECKING:  # imported where OAUTHBEARER with a JWKS is configured: cryptography is ~10 ms of every start
    from suoi.security.jwks import JwksKeys

__all__ = ["ListenerSecurity", "SecurityConfigError", "check_node_security", "client_security", "controller_security",
           "inter_broker_security", "listener_security", "login_node", "node_principal", "reload_certificates",
           "setting"]


class SecurityConfigError(ValueError):
    """Security settings that cannot work; the message names keys, never values."""


@dataclass(frozen=True, slots=True)
class ListenerSecurity:
    name: str
    protocol: str
    ssl_context: ssl.SSLContext | None = None
    principal_mapper: SslPrincipalMapper | None = None
    sasl_mechanisms: tuple[str, ...] = ()
    #: PLAIN users (user_<name> of the listener's PLAIN JAAS config); never printed.
    plain_users: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: connection.failed.authentication.delay.ms: a failed authentication is answered (and the
    #: connection closed) this much later, slowing down password guessing (Kafka's default 100).
    failed_authentication_delay_ms: int = 100
    #: connections.max.reauth.ms (KIP-368): a SASL session lasts this long; the client must
    #: re-authenticate on the connection before it ends, or the connection is closed (0: forever).
    reauth_ms: int = 0
    #: key -> value of this listener's settings (listener.name.<l>.<key>, else <key>): reloads
    settings: Callable[[str], str | None] = field(default=lambda key: None, repr=False)
    #: OAUTHBEARER's token validator (unsecured or JWKS), and the JWKS the broker keeps fresh.
    oauth_validator: Validator | None = field(default=None, repr=False)
    jwks: JwksKeys | None = field(default=None, repr=False)

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")


def setting(values: Mapping[str, object], listener: str, key: str) -> str | None:
    """``listener.name.<listener>.<key>``, else ``<key>``; None when unset or empty."""
    for k in (f"listener.name.{listener.lower()}.{key}", key):
        v = values.get(k)
        if v is not None and str(v).strip() != "":
            return str(v)
    return None


def _jaas(values: Mapping[str, object], listener: str, mechanism: str) -> tuple[str, str] | None:
    """(key, text) of the JAAS config for a listener and mechanism."""
    for k in (f"listener.name.{listener.lower()}.{mechanism.lower()}.sasl.jaas.config",
              f"listener.name.{listener.lower()}.sasl.jaas.config", "sasl.jaas.config"):
        v = values.get(k)
        if v:
            return k, str(v)
    return None


def _mechanisms(values: Mapping[str, object], listener: str) -> tuple[str, ...]:
    raw = setting(values, listener, "sasl.enabled.mechanisms") or "GSSAPI"  # Kafka's default
    mechs = tuple(m.strip().upper() for m in raw.split(",") if m.strip())
    unsupported = [m for m in mechs if m not in SUPPORTED_MECHANISMS]
    if unsupported or not mechs:
        raise SecurityConfigError(
            f"listener {listener}: sasl.enabled.mechanisms: {', '.join(unsupported) or 'none'} not supported by suoi "
            f"(supported: {', '.join(SUPPORTED_MECHANISMS)}); set sasl.enabled.mechanisms "
            f"(or listener.name.{listener.lower()}.sasl.enabled.mechanisms)")
    return mechs


def listener_security(values: Mapping[str, object], name: str) -> ListenerSecurity:
    protocol = listener_protocol(values, name)
    if protocol == "PLAINTEXT":
        return ListenerSecurity(name, protocol)
    ctx = mapper = None
    if protocol in ("SSL", "SASL_SSL"):
        ctx = server_context(lambda k: setting(values, name, k), name)
        mapper = SslPrincipalMapper(setting(values, name, "ssl.principal.mapping.rules"))
    mechanisms: tuple[str, ...] = ()
    users: dict[str, str] = {}
    if protocol.startswith("SASL_"):
        mechanisms = _mechanisms(values, name)
        if "PLAIN" in mechanisms:
            found = _jaas(values, name, "PLAIN")
            if found is None:
                raise SecurityConfigError(
                    f"listener {name}: SASL/PLAIN needs users: set listener.name.{name.lower()}.plain.sasl.jaas.config "
                    f"(or sasl.jaas.config) to a PlainLoginModule with user_<name>=\"<password>\" options")
            try:
                users = parse_jaas(found[1], found[0]).users
            except JaasError as exc:
                raise SecurityConfigError(str(exc)) from None
    validator, jwks = _oauth_validator(values, name) if "OAUTHBEARER" in mechanisms else (None, None)
    delay_ms = _ms(values, name, "connection.failed.authentication.delay.ms", 100)
    return ListenerSecurity(name, protocol, ctx, mapper, mechanisms, users, delay_ms,
                            _ms(values, name, "connections.max.reauth.ms", 0), lambda k: setting(values, name, k),
                            validator, jwks)


_OAUTH_KEYS = ("sasl.oauthbearer.expected.audience", "sasl.oauthbearer.expected.issuer",
               "sasl.oauthbearer.sub.claim.name", "sasl.oauthbearer.scope.claim.name",
               "sasl.oauthbearer.clock.skew.seconds")


def _oauth_validator(values: Mapping[str, object], name: str) -> tuple[Validator, JwksKeys | None]:
    """Kafka's choice: listener.name.<l>.oauthbearer.sasl.server.callback.handler.class names the
    JWKS validator, else the unsecured one (options from the OAUTHBEARER JAAS config)."""
    handler_key = f"listener.name.{name.lower()}.oauthbearer.sasl.server.callback.handler.class"
    handler = str(values.get(handler_key) or UNSECURED_HANDLER).strip()
    url = setting(values, name, "sasl.oauthbearer.jwks.endpoint.url")
    if handler in JWKS_HANDLERS:
        if url is None:
            raise SecurityConfigError(f"listener {name}: {handler_key} validates tokens with a JWKS: set "
                                      "sasl.oauthbearer.jwks.endpoint.url")
        from suoi.security.jwks import JwksKeys, JwksValidator

        keys = JwksKeys(url, _ms(values, name, "sasl.oauthbearer.jwks.endpoint.refresh.ms", 3_600_000) / 1000 or 3600)
        try:
            return JwksValidator.from_settings(keys, {k: setting(values, name, k) for k in _OAUTH_KEYS}), keys
        except ValueError:
            raise SecurityConfigError("sasl.oauthbearer.clock.skew.seconds: not a number") from None
    if handler != UNSECURED_HANDLER:
        raise SecurityConfigError(f"{handler_key}={handler}: not supported; suoi has Kafka's two OAUTHBEARER validators "
                                  f"({UNSECURED_HANDLER}, {min(JWKS_HANDLERS)})")
    if url is not None:  # never silently ignored: the unsecured validator would accept unsigned tokens
        raise SecurityConfigError(f"listener {name}: sasl.oauthbearer.jwks.endpoint.url is set but tokens would be "
                                  f"checked by the unsecured validator: set {handler_key}={min(JWKS_HANDLERS)}")
    found = _jaas(values, name, "OAUTHBEARER")
    try:
        options = parse_jaas(found[1], found[0]).options if found is not None else {}
        return UnsecuredValidator.from_jaas(options), None
    except ValueError as exc:  # JaasError, or a bad unsecuredValidator* option
        raise SecurityConfigError(f"listener {name}: OAUTHBEARER JAAS config: {exc}") from None


def _ms(values: Mapping[str, object], listener: str, key: str, default: int) -> int:
    raw = setting(values, listener, key)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        raise SecurityConfigError(f"{key}={raw}: not a number") from None
    if value < 0:
        raise SecurityConfigError(f"{key}={raw}: must not be negative")
    return value


def client_security(values: Mapping[str, object], listener: str | None, mechanism_key: str) -> ClientSecurity:
    """How this node connects to ``listener`` of its peers; ``mechanism_key`` is
    sasl.mechanism.inter.broker.protocol or sasl.mechanism.controller.protocol."""
    if listener is None:
        return PLAINTEXT
    protocol = listener_protocol(values, listener)
    ctx, check = None, False
    if protocol in ("SSL", "SASL_SSL"):
        ctx, check = client_context(lambda k: setting(values, listener, k), listener)
    creds = None
    if protocol.startswith("SASL_"):
        mechanism = str(values.get(mechanism_key) or "GSSAPI").strip().upper()
        if mechanism not in CLIENT_MECHANISMS:
            raise SecurityConfigError(f"{mechanism_key}={mechanism}: suoi's nodes authenticate to each other with "
                                      f"{', '.join(CLIENT_MECHANISMS)} only")
        found = _jaas(values, listener, mechanism)
        options = {}
        if found is not None:
            try:
                options = parse_jaas(found[1], found[0]).options
            except JaasError as exc:
                raise SecurityConfigError(str(exc)) from None
        if mechanism == "OAUTHBEARER":
            return ClientSecurity(ctx, check, _oauth_login(values, listener, options))
        if not options.get("username") or "password" not in options:
            raise SecurityConfigError(
                f"listener {listener}: this node authenticates to its peers with {mechanism}: set username and "
                f"password in listener.name.{listener.lower()}.{mechanism.lower()}.sasl.jaas.config")
        creds = SaslClientCredentials(mechanism, options["username"], options["password"])
    return ClientSecurity(ctx, check, creds)


_LOGIN_KEYS = ("sasl.login.connect.timeout.ms", "sasl.login.read.timeout.ms", "sasl.login.retry.backoff.ms",
               "sasl.login.retry.backoff.max.ms", "sasl.login.refresh.window.factor",
               "sasl.login.refresh.window.jitter", "sasl.login.refresh.min.period.seconds",
               "sasl.login.refresh.buffer.seconds", "sasl.oauthbearer.sub.claim.name", "sasl.oauthbearer.scope.claim.name")


def _oauth_setting(values: Mapping[str, object], listener: str, key: str) -> str | None:
    """``listener.name.<l>.oauthbearer.<key>`` (Kafka's per-mechanism prefix), else as `setting`."""
    v = values.get(f"listener.name.{listener.lower()}.oauthbearer.{key}")
    return str(v) if v is not None and str(v).strip() != "" else setting(values, listener, key)


def _oauth_login(values: Mapping[str, object], listener: str, options: Mapping[str, str]) -> SaslClientCredentials:
    """OAUTHBEARER between nodes: Kafka's default login callback (unsecured tokens, claims from
    the listener's OAUTHBEARER JAAS config), or KIP-768's (tokens from
    sasl.oauthbearer.token.endpoint.url with the JAAS clientId/clientSecret/scope)."""
    handler = (_oauth_setting(values, listener, "sasl.login.callback.handler.class") or "").strip()
    url = _oauth_setting(values, listener, "sasl.oauthbearer.token.endpoint.url")
    if handler in LOGIN_HANDLERS:
        if url is None:
            raise SecurityConfigError(f"listener {listener}: sasl.login.callback.handler.class={handler} gets tokens "
                                      "from an identity provider: set sasl.oauthbearer.token.endpoint.url")
        try:
            settings = login_settings(url, options, {k: _oauth_setting(values, listener, k) for k in _LOGIN_KEYS})
        except ValueError as exc:
            raise SecurityConfigError(f"listener {listener}: {exc}") from None
        return SaslClientCredentials("OAUTHBEARER", settings.client_id, "", login=oauth_login(settings))
    if handler and handler != UNSECURED_LOGIN_HANDLER:
        raise SecurityConfigError(f"sasl.login.callback.handler.class={handler}: suoi's nodes get OAUTHBEARER "
                                  f"tokens from {UNSECURED_LOGIN_HANDLER} or {min(LOGIN_HANDLERS)} only")
    if url is not None:  # never silently ignored: the node would send unsecured tokens instead
        raise SecurityConfigError(f"listener {listener}: sasl.oauthbearer.token.endpoint.url is set but the node "
                                  f"would send unsecured tokens: set sasl.login.callback.handler.class="
                                  f"{min(LOGIN_HANDLERS)}")
    try:
        unsecured_login_token(options)  # the claims are checked once, at start
    except ValueError as exc:
        raise SecurityConfigError(f"listener.name.{listener.lower()}.oauthbearer.sasl.jaas.config: {exc}") from None
    claim = options.get("unsecuredLoginPrincipalClaimName") or "sub"
    return SaslClientCredentials("OAUTHBEARER", options.get(f"unsecuredLoginStringClaim_{claim}", ""), "",
                                 tuple(sorted(options.items())))


def inter_broker_security(config: Any) -> ClientSecurity:
    """How this node's replica fetchers (and transaction marker writers) reach other brokers."""
    return client_security(config.values, config.inter_broker_listener_name, "sasl.mechanism.inter.broker.protocol")


def controller_security(config: Any) -> ClientSecurity:
    """How this node reaches the controllers (Raft quorum, forwarding, heartbeats)."""
    names = config.controller_listener_names
    return client_security(config.values, names[0] if names else None, "sasl.mechanism.controller.protocol")


def node_principal(config: Any) -> str:
    """The principal this node's controller listener gives the node itself, as it gives every
    peer that connects: the SASL user of the node's controller login; on an SSL listener that asks
    for a client certificate (ssl.client.auth requested/required), the subject of the node's own
    keystore certificate mapped by the listener's ssl.principal.mapping.rules (the certificate the
    node presents); else User:ANONYMOUS. The node's in-process calls to its own controller are
    authorized as this principal, so super.users and ACLs treat them as its socket calls."""
    security = controller_security(config)
    if security.sasl is not None:
        return f"User:{security.sasl.principal}"
    names = config.controller_listener_names
    if security.ssl_context is None or not names:
        return ANONYMOUS
    values, listener = config.values, names[0]
    if (setting(values, listener, "ssl.client.auth") or "none").strip().lower() == "none":
        return ANONYMOUS  # the listener asks for no certificate: the node's is never seen
    der = keystore_certificate(lambda k: setting(values, listener, k))
    if der is None:
        return ANONYMOUS
    try:
        return SslPrincipalMapper(setting(values, listener, "ssl.principal.mapping.rules")).principal(
            certificate_dn(der))
    except PrincipalMappingError as exc:  # its own controller listener would close its connections
        raise SecurityConfigError(f"listener {listener}: this node's own keystore certificate: {exc}; "
                                  f"set listener.name.{listener.lower()}.ssl.principal.mapping.rules") from None


async def login_node(config: Any) -> None:
    """Fetch this node's OAUTHBEARER tokens from its identity provider before it connects to
    anyone, as Kafka's login does at start: a refused login stops the start (OAuthLoginError,
    one line naming the endpoint and the client id, never the secret)."""
    for security in (controller_security(config), inter_broker_security(config)):
        if security.sasl is not None and security.sasl.login is not None:
            await security.sasl.login.token()


def check_node_security(config: Any) -> None:
    """Build every listener's and every inter-node client's security once, so a bad keystore,
    a missing JAAS config or an unsupported mechanism stops the node at start in one line."""
    for listener in config.listeners:
        listener_security(config.values, listener.name)
    clients = (inter_broker_security(config), controller_security(config)) if config.get("process.roles") else ()
    if clients:
        node_principal(config)  # a node its own controller listener would refuse does not start
    login_keys = [k for k in config.values if str(config.values[k] or "").strip()
                  and k.endswith(("sasl.oauthbearer.token.endpoint.url", "sasl.login.callback.handler.class"))]
    if login_keys and not any(c.sasl is not None and c.sasl.login is not None for c in clients):
        raise SecurityConfigError(  # a node's login settings that no connection of the node uses: never ignored
            f"{login_keys[0]} is set but this node does not get OAUTHBEARER tokens from an identity provider: set "
            "sasl.mechanism.controller.protocol (or .inter.broker.protocol)=OAUTHBEARER on a SASL listener, with "
            f"sasl.login.callback.handler.class={min(LOGIN_HANDLERS)}")


async def reload_certificates(securities: Iterable[ListenerSecurity]) -> None:
    """Run for the node's lifetime: reload TLS listeners' keystores/truststores when their files
    change (`suoi.security.reload`)."""
    import asyncio

    from suoi.security.reload import TLS_RELOAD_CHECK_S, TlsReloader

    reloader = TlsReloader((s.name, s.ssl_context, s.settings) for s in securities if s.ssl_context is not None)
    while reloader:
        await asyncio.sleep(TLS_RELOAD_CHECK_S)  # a periodic check, not a synchronisation
        reloader.check()
