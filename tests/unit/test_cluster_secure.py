"""`suoi cluster up --secure` without brokers (`suoi.cli.cluster_secure`): the files it writes
(modes, certificates a TLS client accepts for 127.0.0.1), that every node's properties build
the node's listeners and inter-node logins (TLS contexts from the keystores included), that kept
data keeps its passwords, and what is refused."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest

from suoi.cli import cluster_secure as cs
from suoi.cli.cluster_layout import Cluster, node_properties, plan_cluster
from suoi.cli.common import CliError
from suoi.config import load_config
from suoi.security.listeners import check_node_security, controller_security, inter_broker_security


def secure_plan(directory: Path, brokers: int, controllers: int) -> Cluster:
    cluster = plan_cluster(directory, brokers, controllers)
    cluster.secure = True
    return cluster


def test_files_are_private_and_the_passwords_random(tmp_path: Path) -> None:
    chosen = cs.prepare(secure_plan(tmp_path, 2, 0), kept_data=False)
    assert stat.S_IMODE((tmp_path / "tls").stat().st_mode) == 0o700
    for name in ("admin.properties", "client.properties", "controller.properties", "tls/ca.key", "tls/node-1.pem",
                 "tls/node-2.pem"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    assert chosen.admin_password != chosen.node_password and len(chosen.admin_password) >= 24
    assert chosen.admin_password not in repr(chosen)
    assert cs.prepare(secure_plan(tmp_path, 2, 0), kept_data=False).admin_password != chosen.admin_password


def test_kept_data_keeps_its_passwords_and_its_ca(tmp_path: Path) -> None:
    first = cs.prepare(secure_plan(tmp_path, 1, 0), kept_data=False)
    ca = (tmp_path / "tls/ca.pem").read_bytes()
    again = cs.prepare(secure_plan(tmp_path, 1, 0), kept_data=True)
    assert (again.admin_password, again.node_password) == (first.admin_password, first.node_password)
    assert (tmp_path / "tls/ca.pem").read_bytes() == ca
    (tmp_path / "admin.properties").unlink()
    with pytest.raises(CliError, match="holds a secure cluster's data but not its admin.properties"):
        cs.prepare(secure_plan(tmp_path, 1, 0), kept_data=True)


@pytest.mark.parametrize(("brokers", "controllers"), [(3, 0), (2, 1)])
def test_every_node_config_builds_its_listeners_and_logins(tmp_path: Path, brokers: int, controllers: int) -> None:
    cluster = secure_plan(tmp_path, brokers, controllers)
    chosen = cs.prepare(cluster, kept_data=False)
    for node in cluster.nodes:
        config = load_config({**node_properties(cluster, node), **cs.node_security_properties(cluster, node, chosen)}, {})
        check_node_security(config)  # keystores load, JAAS configs parse, mechanisms are supported
        assert {listener.name for listener in config.listeners} == (
            {"SASL_SSL"} if node.is_broker else set()) | ({"CONTROLLER"} if node.is_controller else set())
        ctl = controller_security(config)
        assert (ctl.protocol, ctl.sasl.mechanism, ctl.sasl.username) == ("SASL_SSL", "PLAIN", "broker")
        if node.is_broker:
            inter = inter_broker_security(config)
            assert (inter.protocol, inter.sasl.mechanism, inter.sasl.username) == ("SASL_SSL", "SCRAM-SHA-512", "broker")
        assert config.get("super.users") == "User:admin;User:broker"


def test_a_node_certificate_is_trusted_for_127_0_0_1(tmp_path: Path) -> None:
    cs.prepare(secure_plan(tmp_path, 1, 0), kept_data=False)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "tls/node-1.pem")
    client = ssl.create_default_context(cafile=str(tmp_path / "tls/ca.pem"))  # host name checked
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def serve() -> None:
            conn, _ = listener.accept()
            with server.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with socket.create_connection(listener.getsockname(), timeout=5) as raw, \
                client.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.recv(2) == b"ok"
            assert dict(x[0] for x in tls.getpeercert()["subject"])["commonName"] == "node-1"
        thread.join(5)


@pytest.mark.parametrize("key", ["listeners", "listener.security.protocol.map", "listener.name.sasl_ssl.ssl.client.auth",
                                 "ssl.truststore.location", "sasl.enabled.mechanisms", "authorizer.class.name"])
def test_overrides_of_its_settings_are_refused(key: str) -> None:
    with pytest.raises(CliError, match=f"--override {key} would conflict"):
        cs.check_overrides({key: "x", "min.insync.replicas": "2"})
    cs.check_overrides({"min.insync.replicas": "2", "ssl.enabled.protocols": "TLSv1.3"})  # others are fine


@pytest.mark.parametrize("made_secure", [True, False])
def test_kept_data_restarts_only_in_the_mode_it_was_made_in(tmp_path: Path, made_secure: bool) -> None:
    from suoi.cli.cluster import _check_security_mode
    from suoi.cli.cluster_layout import render_properties

    cluster = secure_plan(tmp_path, 1, 0) if made_secure else plan_cluster(tmp_path, 1, 0)
    chosen = cs.prepare(cluster, kept_data=False) if made_secure else None
    node = cluster.node(1)
    extra = cs.node_security_properties(cluster, node, chosen) if chosen is not None else {}
    cluster.node_dir(1).mkdir(parents=True)
    cluster.config_path(1).write_text(render_properties({**node_properties(cluster, node), **extra}, "test"))
    assert cs.existing_security(tmp_path) is made_secure
    _check_security_mode(tmp_path, made_secure, True, {})  # the same mode: fine
    with pytest.raises(CliError, match=f"made {'with' if made_secure else 'without'} --secure"):
        _check_security_mode(tmp_path, not made_secure, True, {})
