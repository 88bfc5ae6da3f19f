"""KIP-768's login side for suoi's nodes (suoi.security.oauth_login): Kafka's refresh time, the
client-credentials grant against a small identity provider on 127.0.0.1, a background refresh
that keeps the current token in use, bounded retries, refusals that never show the secret."""

from __future__ import annotations

import asyncio
import time

import pytest

from suoi.cli.cluster_layout import free_ports
from suoi.security.listeners import SecurityConfigError, client_security
from suoi.security.oauth_login import LoginSettings, OAuthLogin, OAuthLoginError, login_settings, refresh_at_ms
from suoi.security.oauthbearer import decode_jwt
from tests.oauth_tokens import IdentityProvider, SigningKeys

LOGIN = "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler"  # the older name


def _settings(url: str, secret: str = "s3cret", **extra: object) -> LoginSettings:
    values = {"url": url, "client_id": "node", "client_secret": secret, "scope": "kafka", **extra}
    return LoginSettings(**values)  # type: ignore[arg-type]


def test_refresh_time_is_kafkas_window_kept_within_buffer_and_min_period() -> None:
    s = _settings("http://x")  # factor 0.8, jitter 0.05, min period 60 s, buffer 300 s
    assert refresh_at_ms(0, 3_600_000, s, rand=0.0) == 2_880_000  # 80 % of the lifetime
    assert refresh_at_ms(0, 3_600_000, s, rand=1.0) == 3_060_000  # + the whole jitter
    assert refresh_at_ms(0, 1_000_000, s, rand=0.0) == 700_000  # moved up: 300 s before expiry
    assert refresh_at_ms(0, 300_000, s, rand=0.0) == 240_000  # shorter than min period + buffer: both ignored
    late = _settings("http://x", window_factor=0.5, buffer_s=0, min_period_s=150)
    assert refresh_at_ms(0, 200_000, late, rand=0.0) == 150_000  # not before the minimum period


def test_settings_are_checked_and_named_by_key() -> None:
    with pytest.raises(ValueError, match="sasl.login.refresh.window.factor"):
        login_settings("http://x/token", {"clientId": "a", "clientSecret": "b"}, {"sasl.login.refresh.window.factor": "0.3"})
    with pytest.raises(ValueError, match="clientId and clientSecret"):
        login_settings("http://x/token", {"clientId": "a"}, {})
    values = {"listener.security.protocol.map": "CONTROLLER:SASL_PLAINTEXT",
              "sasl.mechanism.controller.protocol": "OAUTHBEARER",
              "listener.name.controller.oauthbearer.sasl.login.callback.handler.class": LOGIN,
              "listener.name.controller.oauthbearer.sasl.jaas.config":
                  'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId="a" '
                  'clientSecret="top-s3cret";'}
    with pytest.raises(SecurityConfigError, match="set sasl.oauthbearer.token.endpoint.url") as refused:
        client_security(values, "CONTROLLER", "sasl.mechanism.controller.protocol")
    assert "top-s3cret" not in str(refused.value)
    values["sasl.oauthbearer.token.endpoint.url"] = "http://127.0.0.1:1/token"
    security = client_security(values, "CONTROLLER", "sasl.mechanism.controller.protocol")
    assert security.sasl is not None and security.sasl.login is not None
    assert "top-s3cret" not in repr(security) + repr(security.sasl.login) + repr(security.sasl.login.settings)


def test_tokens_are_fetched_once_and_refreshed_before_they_expire() -> None:
    keys = SigningKeys()
    # 3 s (the JWT's whole-second exp leaves 2..3 s): the refresh at 80-85 % of it comes 0.3 s or more
    # before the expiry, enough for the refresh request to reach the provider on a loaded machine
    with IdentityProvider(keys.jwks(), keys, {"node": "s3cret"}, lifetime_s=3) as idp:
        login = OAuthLogin(_settings(idp.token_url))

        async def scenario() -> None:
            first, again = await asyncio.gather(login.token(), login.token())
            assert first == again and idp.issued == {"node": 1}  # one fetch for both
            assert login.principal == "node" and decode_jwt(first)[1]["scope"] == "kafka"
            deadline = time.monotonic() + 10
            while idp.issued["node"] < 2:  # refreshed by the login's own timer, nobody asking
                assert time.monotonic() < deadline, "no refresh"
                await asyncio.sleep(0.05)
            # The provider counts a token when it sends it, before the login has installed it.
            while (token := await login.token()) == first:
                assert time.monotonic() < deadline, "refreshed token never installed"
                await asyncio.sleep(0.01)
            # when the provider signed the refresh, not when this loop noticed it (later, when loaded)
            assert idp.issued_at["node"][1] < decode_jwt(first)[1]["exp"], "refreshed only once the token had expired"
            assert idp.issued == {"node": 2} and decode_jwt(token)[1]["exp"] > decode_jwt(first)[1]["exp"]

        asyncio.run(scenario())


def test_a_refused_login_is_not_retried_and_never_shows_the_secret() -> None:
    keys = SigningKeys()
    with IdentityProvider(keys.jwks(), keys, {"node": "s3cret"}) as idp:
        login = OAuthLogin(_settings(idp.token_url, secret="wrong-s3cret"))
        with pytest.raises(OAuthLoginError) as refused:
            asyncio.run(login.token())
        assert "HTTP 401 (invalid_client" in str(refused.value) and "s3cret" not in str(refused.value)
        assert idp.requests == 1 and idp.issued == {}
        # sasl.oauthbearer.sub.claim.name names the principal's claim: a token without it is not used
        other = OAuthLogin(_settings(idp.token_url, sub_claim="azp"))
        with pytest.raises(OAuthLoginError, match="not usable: the token has no string 'azp' claim"):
            asyncio.run(other.token())


def test_an_unreachable_endpoint_is_retried_within_the_bound() -> None:
    port = free_ports(1)[0]  # nothing listens there
    login = OAuthLogin(_settings(f"http://127.0.0.1:{port}/token", retry_backoff_ms=50, retry_backoff_max_ms=400))
    started = time.monotonic()
    with pytest.raises(OAuthLoginError, match=r"ClientConnectorError \(after [2-9] attempt"):
        asyncio.run(login.token())
    assert time.monotonic() - started < 3
