"""OAUTHBEARER's validators and exchange (suoi.security.oauthbearer, suoi.security.jwks)."""

from __future__ import annotations

import json
import time

import pytest

from suoi.security.jwks import JwksKeys, JwksValidator, parse_jwks
from suoi.security.oauthbearer import INVALID_TOKEN, TokenError, UnsecuredValidator, parse_client_response
from suoi.security.sasl import SaslAuthenticationError, SaslServerSession
from tests.oauth_tokens import SigningKeys, claims, initial_response, unsigned


@pytest.fixture(scope="module")
def signing() -> SigningKeys:
    return SigningKeys()


def _jwks_validator(signing: SigningKeys, **settings: str) -> JwksValidator:
    keys = JwksKeys("http://127.0.0.1/jwks")
    keys.keys = parse_jwks(json.dumps(signing.jwks()).encode())
    return JwksValidator.from_settings(keys, settings)


def test_initial_response_parses_token_authzid_and_extensions() -> None:
    token, authzid, extensions = parse_client_response(initial_response("a.b.c", "alice", traceId="x1"))
    assert (token, authzid, extensions) == ("a.b.c", "alice", {"traceId": "x1"})
    for bad in (b"n,,\x01auth=Bearer a.b.c\x01", b"y,,\x01auth=Bearer a.b.c\x01\x01", b"n,,\x01auth=Basic x\x01\x01",
                b"n,,\x01auth=Bearer a\x01auth=Bearer b\x01\x01", initial_response("a.b.c", **{"bad-key": "v"}),
                b"\xff"):
        with pytest.raises(TokenError):
            parse_client_response(bad)


def test_unsecured_validator_principal_scope_and_expiry() -> None:
    token = UnsecuredValidator()(unsigned(claims("alice", scope="read write")))
    assert token.principal == "alice" and token.scope == ("read", "write")
    assert abs(token.expires_at_ms / 1000 - (time.time() + 600)) < 5
    custom = UnsecuredValidator.from_jaas({"unsecuredValidatorPrincipalClaimName": "user",
                                          "unsecuredValidatorRequiredScope": "write",
                                          "unsecuredValidatorAllowableClockSkewMs": "60000"})
    assert custom(unsigned(claims("x", user="bob", scope=["write"]))).principal == "bob"
    assert custom(unsigned(claims("x", lifetime_s=-30, user="bob", scope="write"))).principal == "bob"  # in skew
    for bad, why in ((unsigned(claims("x", user="bob")), "required scope"),
                     (unsigned(claims("x", lifetime_s=-120, user="bob", scope="write")), "expired"),
                     (unsigned(claims("x", scope="write")), "'user' claim")):
        with pytest.raises(TokenError, match=why):
            custom(bad)
    with pytest.raises(TokenError, match="unsigned"):
        UnsecuredValidator()(SigningKeys().sign(claims()))
    with pytest.raises(TokenError, match="'exp'"):
        UnsecuredValidator()(unsigned({"sub": "alice"}))


def test_jwks_validator_checks_signature_audience_issuer_and_times(signing: SigningKeys) -> None:
    validate = _jwks_validator(signing, **{"sasl.oauthbearer.expected.audience": "kafka,other",
                                           "sasl.oauthbearer.expected.issuer": "https://idp"})
    good = claims("alice", aud=["kafka"], iss="https://idp", scope="produce")
    assert validate(signing.sign(good)).principal == "alice"
    assert validate(signing.sign(good, "ES256")).scope == ("produce",)
    other = SigningKeys()
    refused = {
        "signature": other.sign(good),  # same kid, another key
        "kid": signing.sign(good, kid="unknown"),
        "algorithm": unsigned(good),
        "audience": signing.sign({**good, "aud": "elsewhere"}),
        "issuer": signing.sign({**good, "iss": "https://evil"}),
        "expired": signing.sign({**good, "exp": time.time() - 120}),
        "future": signing.sign({**good, "nbf": time.time() + 120}),
        "'sub'": signing.sign({k: v for k, v in good.items() if k != "sub"}),
    }
    for why, token in refused.items():
        with pytest.raises(TokenError, match=why):
            validate(token)
    tampered = signing.sign(good).split(".")
    tampered[1] = unsigned(claims("mallory", aud="kafka", iss="https://idp")).split(".")[1]
    with pytest.raises(TokenError, match="signature"):
        validate(".".join(tampered))


def test_jwks_skips_unusable_keys(signing: SigningKeys) -> None:
    document = signing.jwks()
    document["keys"] += [{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
                         {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}, {"kty": "RSA", "n": "AQAB"}]
    assert sorted(parse_jwks(json.dumps(document).encode())) == ["ec-1", "rsa-1"]


def test_session_answers_invalid_token_then_fails_with_the_reason_kept_for_the_log() -> None:
    session = SaslServerSession("OAUTHBEARER", plain_users={}, scram_lookup=lambda u, m: None,
                                oauth_validator=UnsecuredValidator())
    token = unsigned(claims("alice", lifetime_s=-60))
    assert session.step(initial_response(token)) == INVALID_TOKEN and not session.done
    with pytest.raises(SaslAuthenticationError) as failure:
        session.step(b"\x01")
    assert str(failure.value) == INVALID_TOKEN.decode() and failure.value.detail == "the token has expired"
    assert token not in repr(failure.value) and token not in str(failure.value.detail)
    ok = SaslServerSession("OAUTHBEARER", plain_users={}, scram_lookup=lambda u, m: None,
                           oauth_validator=UnsecuredValidator())
    assert ok.step(initial_response(unsigned(claims("alice")), "alice")) == b""
    assert ok.done and ok.principal == "User:alice" and ok.expires_at_ms is not None
    wrong_authzid = SaslServerSession("OAUTHBEARER", plain_users={}, scram_lookup=lambda u, m: None,
                                      oauth_validator=UnsecuredValidator())
    assert wrong_authzid.step(initial_response(unsigned(claims("alice")), "bob")) == INVALID_TOKEN


def test_listener_picks_the_validator_as_kafka_does() -> None:
    from suoi.security.listeners import SecurityConfigError, client_security, listener_security

    base = {"listener.security.protocol.map": "CLIENT:SASL_PLAINTEXT", "sasl.enabled.mechanisms": "OAUTHBEARER"}
    unsecured = listener_security(base, "CLIENT")
    assert isinstance(unsecured.oauth_validator, UnsecuredValidator) and unsecured.jwks is None
    jwks = listener_security({**base, "listener.name.client.oauthbearer.sasl.server.callback.handler.class":
                              "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
                              "sasl.oauthbearer.jwks.endpoint.url": "http://127.0.0.1:1/jwks",
                              "listener.name.client.sasl.oauthbearer.jwks.endpoint.refresh.ms": "60000",
                              "sasl.oauthbearer.expected.audience": "a, b"}, "CLIENT")
    assert isinstance(jwks.oauth_validator, JwksValidator) and jwks.oauth_validator.audience == ("a", "b")
    assert jwks.jwks is not None and jwks.jwks.refresh_s == 60
    # between nodes: Kafka's unsecured login callback, its claims from the listener's OAUTHBEARER JAAS config
    with pytest.raises(SecurityConfigError, match="unsecuredLoginStringClaim_sub"):
        client_security({**base, "sasl.mechanism.inter.broker.protocol": "OAUTHBEARER"}, "CLIENT",
                        "sasl.mechanism.inter.broker.protocol")
    jaas = ('org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required '
            'unsecuredLoginStringClaim_sub="broker";')
    creds = client_security({**base, "sasl.mechanism.inter.broker.protocol": "OAUTHBEARER",
                             "listener.name.client.oauthbearer.sasl.jaas.config": jaas}, "CLIENT",
                            "sasl.mechanism.inter.broker.protocol").sasl
    assert creds is not None and creds.mechanism == "OAUTHBEARER" and creds.username == "broker"
    server = SaslServerSession("OAUTHBEARER", plain_users={}, scram_lookup=lambda u, m: None,
                               oauth_validator=UnsecuredValidator())
    assert server.step(creds.exchange().first()) == b"" and server.principal == "User:broker"


def test_unknown_kids_expedite_a_refresh_at_most_once_a_minute_each(signing: SigningKeys) -> None:
    validate = _jwks_validator(signing)
    keys = validate.keys
    for _ in range(3):
        with pytest.raises(TokenError, match="kid"):
            validate(signing.sign(claims(), kid="new-1"))
    assert keys._wake.is_set() and list(keys._missing) == ["new-1"]  # once, however many tokens
    keys._wake.clear()
    with pytest.raises(TokenError, match="kid"):
        validate(signing.sign(claims(), kid="new-1"))
    assert not keys._wake.is_set()  # within the minute: no second refresh for the same kid
    for i in range(40):  # made-up kids: the bookkeeping stays bounded
        keys.expedite(f"made-up-{i}")
    assert len(keys._missing) == 16


def test_unsecured_login_token_is_what_the_unsecured_validator_accepts() -> None:
    """Kafka's OAuthBearerUnsecuredLoginCallbackHandler options, and the client's initial response."""
    from suoi.security.oauthbearer import (
        UnsecuredValidator,
        client_initial_response,
        parse_client_response,
        unsecured_login_token,
    )

    options = {"unsecuredLoginStringClaim_sub": "broker-1", "unsecuredLoginListClaim_scope": ",a,b",
               "unsecuredLoginNumberClaim_n": "7", "unsecuredLoginLifetimeSeconds": "60"}
    token = unsecured_login_token(options, now_s=1000.0)
    accepted = UnsecuredValidator(required_scope=("a",))(token, now_s=1010.0)
    assert accepted.principal == "broker-1" and accepted.scope == ("a", "b")
    assert accepted.expires_at_ms == 1_060_000
    assert parse_client_response(client_initial_response(token)) == (token, None, {})
    with pytest.raises(ValueError, match="unsecuredLoginStringClaim_sub"):
        unsecured_login_token({"unsecuredLoginLifetimeSeconds": "60"})
    with pytest.raises(ValueError, match="unsecuredLoginExtension_x"):
        unsecured_login_token({"unsecuredLoginStringClaim_sub": "b", "unsecuredLoginExtension_x": "1"})
