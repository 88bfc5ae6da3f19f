"""Certificates (trustme) and properties for the TLS/SASL tests: a CA, node certificates for
127.0.0.1, client certificates with a chosen DN, as PEM strings and files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

ADMIN_PASSWORD = "admin-Secr3t-pw"
ALICE_PASSWORD = "alice-Secr3t-pw"
BOB_PASSWORD = "bob-Secr3t-pw"
PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
              f'password="{ADMIN_PASSWORD}" user_admin="{ADMIN_PASSWORD}" user_bob="{BOB_PASSWORD}";')
SCRAM_JAAS = ('org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" '
              f'password="{ADMIN_PASSWORD}";')
#: every secret a node is given or a client uses: none may appear in a node's log
SECRETS = (ADMIN_PASSWORD, ALICE_PASSWORD, BOB_PASSWORD, "PRIVATE KEY")


@dataclass
class Pki:
    directory: Path
    ca: trustme.CA

    @property
    def ca_file(self) -> str:
        path = self.directory / "ca.pem"
        if not path.exists():
            self.ca.cert_pem.write_to_path(str(path))
        return str(path)

    def node_pem(self, common_name: str | None = None) -> tuple[str, str]:
        """(certificate chain, private key) of a node certificate for 127.0.0.1 / localhost
        (subject CN ``common_name``, trustme's own without one)."""
        cert = self.ca.issue_cert("127.0.0.1", "localhost", common_name=common_name)
        return (b"".join(b.bytes() for b in cert.cert_chain_pems).decode(), cert.private_key_pem.bytes().decode())

    def client_files(self, name: str) -> tuple[str, str]:
        """(certificate file, key file) of a client certificate whose CN is ``name``."""
        cert = self.ca.issue_cert(f"{name}@example.com", common_name=name, organization_unit_name="clients")
        cert_path, key_path = self.directory / f"{name}.crt", self.directory / f"{name}.key"
        cert.cert_chain_pems[0].write_to_path(str(cert_path))
        cert.private_key_pem.write_to_path(str(key_path))
        return str(cert_path), str(key_path)


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    return Pki(directory, trustme.CA())


def tls_keystore(pki: Pki, common_name: str | None = None) -> dict[str, str]:
    chain, key = pki.node_pem(common_name)
    return {"ssl.keystore.type": "PEM", "ssl.keystore.certificate.chain": chain, "ssl.keystore.key": key,
            "ssl.truststore.type": "PEM", "ssl.truststore.certificates": pki.ca.cert_pem.bytes().decode()}


def write_props(path: Path, props: dict[str, str]) -> str:
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return str(path)


def external_listener_props(external_protocol: str, **extra: str) -> tuple[dict[str, str], int, int]:
    """A combined KRaft node's properties with a PLAINTEXT listener, an EXTERNAL listener of
    ``external_protocol`` and a CONTROLLER one: (properties, PLAINTEXT port, EXTERNAL port)."""
    from suoi.cli.cluster_layout import free_ports

    plain, external, controller = free_ports(3)
    props = {
        "process.roles": "broker,controller", "node.id": "1", "controller.listener.names": "CONTROLLER",
        "listeners": f"PLAINTEXT://127.0.0.1:{plain},EXTERNAL://127.0.0.1:{external},"
                     f"CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{plain},EXTERNAL://127.0.0.1:{external}",
        "listener.security.protocol.map": f"PLAINTEXT:PLAINTEXT,EXTERNAL:{external_protocol},CONTROLLER:PLAINTEXT",
        "controller.quorum.voters": f"1@127.0.0.1:{controller}", "offsets.topic.replication.factor": "1",
        **extra,
    }
    return props, plain, external
