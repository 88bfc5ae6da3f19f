"""suoi's own client (replica fetchers, forwarding, Raft RPCs use it) on a SASL_SSL listener:
TLS with host name verification, SASL PLAIN, refusals as AuthenticationFailedError, and KIP-368
sessions: a pooled connection is replaced before its session ends, so no request is lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from suoi.cli.cluster_layout import free_ports
from suoi.client import AuthenticationFailedError, ClientSecurity, KafkaClientConnection, NodeClient
from suoi.security.sasl import SaslClientCredentials
from suoi.security.tls import client_context
from suoi.testing import EmbeddedBroker
from tests.e2e.security_helpers import ADMIN_PASSWORD, PLAIN_JAAS, Pki, make_pki, tls_keystore
from tests.integration.support import metadata_req

pytestmark = pytest.mark.timeout(60)
#: connections.max.reauth.ms. The pool replaces a connection for its first request after 80 % of the
#: session: the last request on the old one reaches the node up to 20 % of it (here 0.4 s) before the
#: session ends -- time a loaded machine's scheduling must fit in (with 1 s it was 0.2 s).
SESSION_MS = 2000


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedBroker, Pki]]:
    directory = tmp_path_factory.mktemp("internal-client-tls")
    pki = make_pki(directory / "pki")
    port = free_ports(1)[0]
    overrides = {"listeners": f"SASL_SSL://127.0.0.1:{port}", "sasl.enabled.mechanisms": "PLAIN",
                 "sasl.mechanism.inter.broker.protocol": "PLAIN",  # the only listener is also inter-broker
                 "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS,
                 "connections.max.reauth.ms": str(SESSION_MS), **tls_keystore(pki)}
    with EmbeddedBroker(directory / "node", port=port, overrides=overrides) as broker:
        yield broker, pki


def _security(pki: Pki, password: str = ADMIN_PASSWORD) -> ClientSecurity:
    ctx, check = client_context({"ssl.truststore.location": pki.ca_file}.get, "SASL_SSL")
    return ClientSecurity(ctx, check, SaslClientCredentials("PLAIN", "admin", password))


def test_pool_keeps_working_across_sasl_sessions(node: tuple[EmbeddedBroker, Pki]) -> None:
    broker, pki = node

    async def run() -> int:
        pool = NodeClient(security=_security(pki))
        pool.register(1, "127.0.0.1", broker.port)
        answered = 0
        try:
            started = time.monotonic()
            while time.monotonic() - started < 2.5 * SESSION_MS / 1000:  # two and a half sessions
                response = await pool.request(1, metadata_req(), timeout=5)
                assert [b.port for b in response.brokers] == [broker.port]
                answered += 1
        finally:
            await pool.close()
        return answered

    assert asyncio.run(run()) > 20
    assert "expired without re-authentication" not in broker.logs()


def test_wrong_password_and_an_untrusted_certificate_are_refused(node: tuple[EmbeddedBroker, Pki]) -> None:
    broker, pki = node

    async def connect(host: str, security: ClientSecurity) -> None:
        conn = await KafkaClientConnection.connect(host, broker.port, security=security, timeout=5)
        await conn.close()

    with pytest.raises(AuthenticationFailedError, match="Invalid username or password"):
        asyncio.run(connect("127.0.0.1", _security(pki, "wrong")))
    other = make_pki(Path(broker.data_dir) / "other-ca")  # a CA the node's certificate is not from
    with pytest.raises(AuthenticationFailedError, match="TLS handshake"):
        asyncio.run(connect("127.0.0.1", _security(other)))
    asyncio.run(connect("127.0.0.1", _security(pki)))  # and the right settings connect
