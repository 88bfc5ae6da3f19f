"""A listener's keystore replaced at run time through IncrementalAlterConfigs of the broker, as
Kafka allows (``listener.name.ssl.ssl.keystore.location`` + ``ssl.key.password``), with
confluent-kafka's AdminClient: a keystore that cannot load is refused (INVALID_CONFIG) and the
listener keeps its certificate; a good one is served to new connections at once; DescribeConfigs
shows the password as sensitive with no value, and the node's log never holds it."""

from __future__ import annotations

import logging
import socket
import ssl
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from suoi.testing import InProcessNode
from tests.conftest import wait_until
from tests.e2e.security_helpers import external_listener_props, make_pki

KEY_PASSWORD = "key-Secr3t-pw"


def served_serial(port: int, ca_file: str) -> int:
    ctx = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_keystore_altered_at_run_time(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    pki = make_pki(tmp_path / "pki")
    first, second = pki.ca.issue_cert("127.0.0.1"), pki.ca.issue_cert("127.0.0.1")
    first_file, second_file, broken = tmp_path / "first.pem", tmp_path / "second.pem", tmp_path / "broken.pem"
    first_file.write_bytes(first.private_key_pem.bytes() + b"".join(p.bytes() for p in first.cert_chain_pems))
    key = serialization.load_pem_private_key(second.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(KEY_PASSWORD.encode()))
    second_file.write_bytes(encrypted + b"".join(p.bytes() for p in second.cert_chain_pems))
    broken.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    serial = {f: x509.load_pem_x509_certificate(c.cert_chain_pems[0].bytes()).serial_number
              for f, c in ((first_file, first), (second_file, second))}
    props, plain, tls_port = external_listener_props("SSL", **{
        "listener.name.external.ssl.keystore.type": "PEM",
        "listener.name.external.ssl.keystore.location": str(first_file)})
    with InProcessNode(properties=props) as node:
        assert served_serial(tls_port, pki.ca_file) == serial[first_file]
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{plain}"})

        def alter(*entries: tuple[str, str], admin: AdminClient = admin) -> None:
            resource = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in entries])
            admin.incremental_alter_configs([resource])[resource].result(timeout=20)

        with pytest.raises(KafkaException) as refused:
            alter(("listener.name.external.ssl.keystore.location", str(broken)))
        assert refused.value.args[0].name() == "INVALID_CONFIG"
        assert "ssl.keystore" in refused.value.args[0].str()
        with pytest.raises(KafkaException):  # the right file, without its key's password
            alter(("listener.name.external.ssl.keystore.location", str(second_file)))
        assert served_serial(tls_port, pki.ca_file) == serial[first_file]  # unchanged

        alter(("listener.name.external.ssl.keystore.location", str(second_file)),
              ("listener.name.external.ssl.key.password", KEY_PASSWORD))
        wait_until(lambda: served_serial(tls_port, pki.ca_file) == serial[second_file])

        resource = ConfigResource(ResourceType.BROKER, "1")
        described = admin.describe_configs([resource])[resource].result(timeout=20)
        password = described["listener.name.external.ssl.key.password"]
        assert password.is_sensitive and password.value is None
        assert described["listener.name.external.ssl.keystore.location"].value == str(second_file)
        assert node.broker.config.values["listener.name.external.ssl.key.password"] == KEY_PASSWORD
        del admin  # closed before the node stops
    assert KEY_PASSWORD not in caplog.text
