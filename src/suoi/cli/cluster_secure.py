"""`suoi cluster up --secure`: a local SASL_SSL cluster in one command (issue 14).

What it writes in DIR (keys and passwords 0600, DIR/tls 0700):

* ``tls/ca.pem`` (the truststore) and ``tls/ca.key``: a CA made for this cluster; ``tls/node-N.pem``:
  node N's keystore, its private key and certificate chain in one PEM file (Kafka's
  ``ssl.keystore.type=PEM`` with ``ssl.keystore.location``), for 127.0.0.1, ::1 and localhost.
* ``admin.properties``: the admin's client settings with Kafka's Java names (security.protocol,
  sasl.mechanism, sasl.jaas.config, ssl.truststore.*): ``--command-config`` of every suoi tool
  (and of Kafka's own); ``client.properties``: the same with librdkafka's names
  (confluent-kafka, ``kcat -F``); ``controller.properties``: the nodes' own login to the
  CONTROLLER listeners (``suoi metadata-quorum --bootstrap-controller``).

The nodes: every listener SASL_SSL. Clients and inter-broker traffic (the replica fetchers) use
SCRAM-SHA-512 on the SASL_SSL listener; the CONTROLLER listener uses PLAIN, because SCRAM
credentials live in the metadata log that the quorum must elect a leader to read (KRaft setups
of Kafka pair SCRAM for brokers with PLAIN for controllers for the same reason). Two principals, each with its own
random password: ``User:admin`` (the operator; its SCRAM credential bootstrapped as ``suoi
storage format --add-scram``, KIP-900, so the password is in no node's files) and ``User:broker``
(the nodes themselves). Both are ``super.users``; Kafka's StandardAuthorizer is on, so anyone
else needs ACLs. A kept cluster (``down`` without ``--purge``) comes back with the same CA and
passwords: its metadata log already holds the credentials.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from suoi.atomic_file import write_atomically
from suoi.cli.cluster_layout import CONTROLLER_LISTENER, SECURE_LISTENER, Cluster, Node
from suoi.cli.common import CliError

__all__ = ["ADMIN_PROPERTIES", "ADMIN_USER", "AUTHORIZER", "CLIENT_PROPERTIES", "CONTROLLER_PROPERTIES", "MECHANISM",
           "NODE_USER", "Secrets", "check_overrides", "client_security", "client_settings", "controller_client_security",
           "existing_security", "node_security_properties", "prepare", "print_guide", "purge_files", "scram_bootstrap",
           "security_report", "write_private"]

ADMIN_USER = "admin"
#: the nodes' own principal (inter-broker SCRAM, PLAIN on the controller listeners)
NODE_USER = "broker"
MECHANISM = "SCRAM-SHA-512"
CONTROLLER_MECHANISM = "PLAIN"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
TLS_DIR = "tls"
ADMIN_PROPERTIES = "admin.properties"
CLIENT_PROPERTIES = "client.properties"
CONTROLLER_PROPERTIES = "controller.properties"
#: certificates are good for this long (a local cluster; `up` re-issues the node certificates)
CERT_DAYS = 825
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule"
PLAIN_JAAS = "org.apache.kafka.common.security.plain.PlainLoginModule"

#: Settings `--secure` makes: an --override of one of these would give a cluster whose listeners
#: cannot talk to each other, or one that is not what `--secure` promises (refused, not merged).
OWNED_KEYS = frozenset({
    "listeners", "advertised.listeners", "listener.security.protocol.map", "inter.broker.listener.name",
    "security.inter.broker.protocol", "controller.listener.names", "sasl.enabled.mechanisms",
    "sasl.mechanism.inter.broker.protocol", "sasl.mechanism.controller.protocol", "sasl.jaas.config",
    "ssl.client.auth", "authorizer.class.name", "super.users", "ssl.key.password",
})
OWNED_PREFIXES = ("listener.name.", "ssl.keystore.", "ssl.truststore.")


@dataclass(frozen=True)
class Secrets:
    """The two random passwords (never in a repr, a log or the output)."""

    admin_password: str = field(repr=False)
    node_password: str = field(repr=False)


def check_overrides(overrides: dict[str, str]) -> None:
    """Refuse `--secure` with an --override that changes what it sets up (one line naming the keys)."""
    clash = sorted(k for k in overrides if k in OWNED_KEYS or k.startswith(OWNED_PREFIXES))
    if clash:
        raise CliError(f"--secure sets the listeners, TLS, SASL and the authorizer itself; --override "
                       f"{', '.join(clash)} would conflict with it: drop the override(s), or run without --secure "
                       f"and give every security setting yourself")


def existing_security(directory: Path) -> bool | None:
    """Whether the nodes kept in `directory` were made with --secure (None: no nodes there)."""
    from suoi.config import read_properties

    found = []
    for cfg in sorted(directory.glob("node-*/server.properties")):
        try:
            found.append(SECURE_LISTENER in read_properties(cfg).get("listener.security.protocol.map", ""))
        except OSError:
            continue
    return any(found) if found else None


# ============================================================================ files


def prepare(cluster: Cluster, *, kept_data: bool) -> Secrets:
    """Write the CA, the node keystores and the client properties; the passwords to use.
    With `kept_data` (a stopped cluster's metadata log holds the credentials) the passwords of
    the files written last time are kept, and a missing file is an error."""
    tls = cluster.dir / TLS_DIR
    tls.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(tls, 0o700)
    found = _read_secrets(cluster.dir)
    if kept_data and found is None:
        raise CliError(f"{cluster.dir} holds a secure cluster's data but not its {ADMIN_PROPERTIES} and "
                       f"{CONTROLLER_PROPERTIES} (the passwords in its metadata log): restore them, or start "
                       f"afresh with 'suoi cluster down --purge --dir {cluster.dir}'")
    chosen = found if kept_data and found is not None else Secrets(secrets.token_urlsafe(24), secrets.token_urlsafe(24))
    ca_cert, ca_key = _certificate_authority(tls, cluster.cluster_id)
    for node in cluster.nodes:
        write_private(tls / f"node-{node.id}.pem", _node_keystore(ca_cert, ca_key, node.id))
    truststore = str((tls / "ca.pem").resolve())
    tls_props = {"ssl.truststore.type": "PEM", "ssl.truststore.location": truststore}
    write_private(cluster.dir / ADMIN_PROPERTIES, _properties(
        f"The admin (User:{ADMIN_USER}, super user) of suoi cluster {cluster.cluster_id}: "
        f"suoi <tool> --command-config {cluster.dir / ADMIN_PROPERTIES}",
        {"security.protocol": "SASL_SSL", "sasl.mechanism": MECHANISM,
         "sasl.jaas.config": _jaas(SCRAM_JAAS, ADMIN_USER, chosen.admin_password), **tls_props}))
    write_private(cluster.dir / CLIENT_PROPERTIES, _properties(
        f"The admin of suoi cluster {cluster.cluster_id} with librdkafka's names (confluent-kafka, kcat -F)",
        {"security.protocol": "SASL_SSL", "sasl.mechanism": MECHANISM, "sasl.username": ADMIN_USER,
         "sasl.password": chosen.admin_password, "ssl.ca.location": truststore}))
    write_private(cluster.dir / CONTROLLER_PROPERTIES, _properties(
        f"The nodes' own login (User:{NODE_USER}) to the CONTROLLER listeners of suoi cluster {cluster.cluster_id}",
        {"security.protocol": "SASL_SSL", "sasl.mechanism": CONTROLLER_MECHANISM,
         "sasl.jaas.config": _jaas(PLAIN_JAAS, NODE_USER, chosen.node_password), **tls_props}))
    return chosen


def _read_secrets(directory: Path) -> Secrets | None:
    from suoi.config import read_properties
    from suoi.security.jaas import JaasError, parse_jaas

    try:
        admin = parse_jaas(read_properties(directory / ADMIN_PROPERTIES)["sasl.jaas.config"]).options["password"]
        node = parse_jaas(read_properties(directory / CONTROLLER_PROPERTIES)["sasl.jaas.config"]).options["password"]
    except (OSError, KeyError, JaasError):
        return None
    return Secrets(admin, node)


def write_private(path: Path, data: str | bytes) -> None:
    """Create or replace `path` readable by its owner only (0600 before any byte is written).
    Not fsynced: files for the user, made again by `cluster up` if a machine crash lost them."""
    write_atomically(path, data, fsync=False, mode=0o600, tmp=path.with_name(f".{path.name}.tmp"))


def _properties(header: str, props: dict[str, str]) -> str:
    return f"# {header}\n" + "".join(f"{k}={v}\n" for k, v in props.items())


def _jaas(module: str, user: str, password: str, *, serve: bool = False) -> str:
    served = f' user_{user}="{password}"' if serve else ""
    return f'{module} required username="{user}" password="{password}"{served};'


# ============================================================================ certificates


def _certificate_authority(tls: Path, cluster_id: str) -> tuple[Any, Any]:
    """The cluster's CA (kept across `up`s, so clients' truststores stay valid), made if missing."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path, key_path = tls / "ca.pem", tls / "ca.key"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "suoi"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"suoi cluster {cluster_id} CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    write_private(key_path, _private_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _node_keystore(ca_cert: Any, ca_key: Any, node_id: int) -> bytes:
    """Node `node_id`'s PEM keystore: a new private key (PKCS#8), its certificate, the CA's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                       x509.IPAddress(ipaddress.ip_address("::1"))])
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "suoi"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, f"node-{node_id}")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return (_private_pem(key) + cert.public_bytes(serialization.Encoding.PEM)
            + ca_cert.public_bytes(serialization.Encoding.PEM))


def _private_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


# ============================================================================ node settings


def node_security_properties(cluster: Cluster, node: Node, chosen: Secrets) -> dict[str, str]:
    """What `--secure` adds to a node's server.properties (Kafka's names; its listeners are
    SASL_SSL and CONTROLLER, named in `cluster_layout.node_properties`)."""
    tls = (cluster.dir / TLS_DIR).resolve()
    ctl = CONTROLLER_LISTENER.lower()
    # a controller-only node has no SASL_SSL listener and talks to no broker
    broker = {
        "inter.broker.listener.name": SECURE_LISTENER,
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        f"listener.name.{SECURE_LISTENER.lower()}.{MECHANISM.lower()}.sasl.jaas.config":
            _jaas(SCRAM_JAAS, NODE_USER, chosen.node_password),
    } if node.is_broker else {}
    return {
        "listener.security.protocol.map": f"{SECURE_LISTENER}:SASL_SSL,{CONTROLLER_LISTENER}:SASL_SSL",
        **broker,
        f"listener.name.{ctl}.sasl.enabled.mechanisms": CONTROLLER_MECHANISM,
        "sasl.mechanism.controller.protocol": CONTROLLER_MECHANISM,
        f"listener.name.{ctl}.{CONTROLLER_MECHANISM.lower()}.sasl.jaas.config":
            _jaas(PLAIN_JAAS, NODE_USER, chosen.node_password, serve=True),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls / f"node-{node.id}.pem"),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls / "ca.pem"),
        "authorizer.class.name": AUTHORIZER,
        "super.users": f"User:{ADMIN_USER};User:{NODE_USER}",
    }


def scram_bootstrap(chosen: Secrets) -> list[str]:
    """`suoi storage format --add-scram` items for a controller's storage (KIP-900)."""
    return [f"{MECHANISM}=[name={ADMIN_USER},password={chosen.admin_password}]",
            f"{MECHANISM}=[name={NODE_USER},password={chosen.node_password}]"]


# ============================================================================ clients of the cluster


def client_security(cluster: Cluster) -> Any:
    """How `suoi cluster` itself reaches the brokers: the admin (PLAINTEXT for a plain cluster)."""
    return _security(cluster, ADMIN_PROPERTIES)


def controller_client_security(cluster: Cluster) -> Any:
    """How `suoi cluster` reaches the CONTROLLER listeners (the nodes' own PLAIN login)."""
    return _security(cluster, CONTROLLER_PROPERTIES)


def _security(cluster: Cluster, name: str) -> Any:
    from suoi.security.client import PLAINTEXT, from_client_properties

    if not cluster.secure:
        return PLAINTEXT
    return from_client_properties(client_settings(cluster, name))


def client_settings(cluster: Cluster, name: str = ADMIN_PROPERTIES) -> dict[str, str]:
    """librdkafka's settings of one of the properties files (empty for a plain cluster)."""
    from suoi.cli.common import read_client_props

    return read_client_props(cluster.dir / name) if cluster.secure else {}


def security_report(cluster: Cluster) -> dict[str, Any]:
    """What `up` and `status` say about security (paths, never a password)."""
    if not cluster.secure:
        return {"secure": False, "protocol": "PLAINTEXT"}
    return {
        "secure": True, "protocol": "SASL_SSL", "sasl_mechanism": MECHANISM,
        "controller_sasl_mechanism": CONTROLLER_MECHANISM, "authorizer": AUTHORIZER,
        "super_users": [f"User:{ADMIN_USER}", f"User:{NODE_USER}"], "admin_user": ADMIN_USER,
        "admin_properties": str(cluster.dir / ADMIN_PROPERTIES),
        "client_properties": str(cluster.dir / CLIENT_PROPERTIES),
        "controller_properties": str(cluster.dir / CONTROLLER_PROPERTIES),
        "truststore": str(cluster.dir / TLS_DIR / "ca.pem"),
    }


def print_guide(cluster: Cluster, out: TextIO) -> None:
    """After `up --secure`: where the settings are, and confluent-kafka's (the password by reference)."""
    r = security_report(cluster)
    print(f"Secure cluster: every listener SASL_SSL, {MECHANISM} (CONTROLLER: {CONTROLLER_MECHANISM}), ACLs on "
          f"(StandardAuthorizer; super users {', '.join(r['super_users'])}).", file=out)
    print(f"Kafka's and suoi's tools: --command-config {r['admin_properties']}", file=out)
    print(f"confluent-kafka / librdkafka / kcat -F {r['client_properties']}:", file=out)
    print(f"  bootstrap.servers={cluster.bootstrap}\n  security.protocol=SASL_SSL\n  sasl.mechanism={MECHANISM}\n"
          f"  sasl.username={ADMIN_USER}\n  sasl.password=<in {r['client_properties']}>\n"
          f"  ssl.ca.location={r['truststore']}", file=out)
    print("Other clients (kafka-python, aiokafka, kafkajs): README.md, \"Securing suoi\".", file=out)


def purge_files(directory: Path) -> list[str]:
    """`down --purge`: remove what `up --secure` wrote outside the node directories."""
    removed = []
    for name in (ADMIN_PROPERTIES, CLIENT_PROPERTIES, CONTROLLER_PROPERTIES):
        path = directory / name
        if path.is_file():
            path.unlink()
            removed.append(str(path))
    tls = directory / TLS_DIR
    if tls.is_dir():
        shutil.rmtree(tls)
        removed.append(str(tls))
    return removed
