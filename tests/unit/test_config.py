"""Broker configuration: Kafka property names, overrides, warnings for unknown keys."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from suoi.broker import log_config_from
from suoi.config import Listener, load_config, read_properties
from suoi.config_security import UnsupportedSecuritySetting, listener_protocol


def test_server_properties_file_with_kafka_names(tmp_path: Path) -> None:
    path = tmp_path / "server.properties"
    path.write_text(
        "# a Kafka server.properties\n"
        "node.id=3\n"
        "listeners=PLAINTEXT://127.0.0.1:19092\n"
        "advertised.listeners=PLAINTEXT://broker.example:19092\n"
        "log.dirs=/tmp/a,/tmp/b\n"
        "num.partitions = 6\n"
        "log.retention.hours=1\n"
        "log.segment.bytes=1048576\n"
        "message.max.bytes: 2000000\n"
        "log.flush.interval.messages=10000\n"
        "auto.create.topics.enable=false\n"
        "long.value=a\\\n  b\n"
    )
    values = read_properties(path)
    assert values["long.value"] == "ab"
    cfg = load_config(values, {"num.partitions": "2"})
    assert cfg.node_id == 3
    assert cfg.listeners == [Listener("PLAINTEXT", "127.0.0.1", 19092)]
    assert cfg.advertised_listeners == [Listener("PLAINTEXT", "broker.example", 19092)]
    assert cfg.log_dirs == [Path("/tmp/a"), Path("/tmp/b")]
    assert cfg.get_int("num.partitions") == 2  # command-line override wins
    assert cfg.get_bool("auto.create.topics.enable") is False
    lc = log_config_from(cfg)
    assert (lc.retention_ms, lc.segment_bytes, lc.max_message_bytes) == (3_600_000, 1048576, 2_000_000)
    assert lc.flush_interval_messages == 10000 and lc.flush_interval_ms is None


def test_defaults_bind_loopback_and_keep_a_week() -> None:
    cfg = load_config({}, {})
    assert cfg.listeners == [Listener("PLAINTEXT", "127.0.0.1", 9092)]
    assert cfg.log_dirs == [Path("./suoi-data")]
    assert cfg.retention_ms == 168 * 3_600_000
    assert log_config_from(cfg).segment_ms == 168 * 3_600_000


def test_retention_ms_beats_hours_and_minus_one_is_forever() -> None:
    assert load_config({"log.retention.hours": "5", "log.retention.ms": "1234"}, {}).retention_ms == 1234
    assert load_config({"log.retention.minutes": "2"}, {}).retention_ms == 120_000
    assert load_config({"log.retention.ms": "-1"}, {}).retention_ms == -1


def test_unknown_keys_are_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="suoi.config"):
        cfg = load_config({"log.retention.hourz": "5", "num.network.threads": "3", "background.threads": "4"}, {})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # Kafka's own keys suoi does not use: one line naming them all; truly unknown keys: one each
    assert warnings == ["unknown config key log.retention.hourz (ignored)",
                        "Kafka configs accepted but ignored by suoi: background.threads, num.network.threads"]
    assert cfg.ignored == {"num.network.threads": "3", "background.threads": "4"}


def test_kafka_keys_suoi_ignores_are_still_validated_with_kafkas_wording() -> None:
    with pytest.raises(ValueError, match="^Invalid value lots for configuration num.io.threads: "
                                         "Not a number of type INT$"):
        load_config({"num.io.threads": "lots"}, {})
    with pytest.raises(ValueError, match="Value must be at least 1"):
        load_config({"background.threads": "0"}, {})


@pytest.mark.parametrize("key,value", [("num.partitions", "many"), ("auto.create.topics.enable", "maybe"),
                                       ("listeners", "PLAINTEXT://127.0.0.1")])
def test_bad_values_are_rejected_with_the_key_named(key: str, value: str) -> None:
    with pytest.raises(ValueError, match=key if key != "listeners" else "port"):
        load_config({key: value}, {})


def test_listener_names_with_underscores_and_ipv6_hosts_parse() -> None:
    assert Listener.parse_many("REPLICATION_1://[::1]:9094, PLAINTEXT://:9092,127.0.0.1:9095") == [
        Listener("REPLICATION_1", "::1", 9094), Listener("PLAINTEXT", "", 9092), Listener("PLAINTEXT", "127.0.0.1", 9095)]
    with pytest.raises(ValueError, match="is not NAME://host:port"):
        Listener.parse_many("PLAINTEXT://127.0.0.1")


def test_kafkas_shipped_protocol_map_is_accepted_and_names_each_listeners_protocol() -> None:
    """Kafka's server.properties maps SSL/SASL names too; each listener gets its protocol from the map."""
    shipped = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"
    cfg = load_config({"listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
                       "listener.security.protocol.map": shipped, "ssl.keystore.location": ""}, {})
    assert [x.name for x in cfg.listeners] == ["PLAINTEXT", "CONTROLLER"]
    assert [listener_protocol(cfg.values, x) for x in ("PLAINTEXT", "CONTROLLER", "SASL_SSL", "INTERNAL")] == [
        "PLAINTEXT", "PLAINTEXT", "SASL_SSL", "PLAINTEXT"]
    # every node keeps ACLs in its metadata log: Kafka's StandardAuthorizer is accepted without process.roles
    assert load_config({"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer"},
                       {}).get("authorizer.class.name") == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    with pytest.raises(ValueError, match="is not NAME:PROTOCOL"):
        load_config({"listener.security.protocol.map": "CONTROLLER:TLS"}, {})


def test_authorizer_and_connection_settings() -> None:
    kraft = {"process.roles": "broker,controller", "node.id": "1", "controller.listener.names": "CONTROLLER",
             "listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
             "controller.quorum.voters": "1@127.0.0.1:9093"}
    cfg = load_config({**kraft, "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                       "super.users": "User:admin", "allow.everyone.if.no.acl.found": "true"}, {})
    assert cfg.get("super.users") == "User:admin" and cfg.get("allow.everyone.if.no.acl.found") is True
    with pytest.raises(UnsupportedSecuritySetting, match="an authorizer other than"):
        load_config({**kraft, "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer"}, {})
    # KIP-612 connection creation rates and per-listener counts are taken, as numbers
    limits = load_config({"max.connection.creation.rate": "10", "listener.name.plaintext.max.connections": "5",
                          "listener.name.plaintext.max.connection.creation.rate": "3"}, {})
    assert limits.get_int("max.connection.creation.rate") == 10
    assert limits.get("listener.name.plaintext.max.connections") == 5
    with pytest.raises(ValueError, match="listener.name.plaintext.max.connections"):
        load_config({"listener.name.plaintext.max.connections": "many"}, {})
    with pytest.raises(ValueError, match="host:count"):
        load_config({"max.connections.per.ip.overrides": "10.0.0.1"}, {})
    assert load_config({"max.connections.per.ip.overrides": "10.0.0.1:5"}, {}).get_int("max.connections") > 0


def test_dynamic_listener_limits_and_keystores(tmp_path: Path) -> None:
    """What AlterConfigs may set on a broker with a listener prefix (as Kafka): connection limits,
    and (per broker only) a listener's keystore/truststore; other ssl.* keys need the prefix."""
    from suoi.dynamic_config import DynamicBrokerConfigs, DynamicConfigError, is_sensitive, redacted, validate

    validate("listener.name.external.max.connection.creation.rate", "5")
    validate("listener.name.external.max.connections", "5", cluster_default=True)
    validate("listener.name.ssl.ssl.keystore.location", "/etc/new.p12")
    with pytest.raises(DynamicConfigError, match="Not a number"):
        validate("listener.name.external.max.connections", "lots")
    with pytest.raises(DynamicConfigError, match="broker id must be specified"):
        validate("listener.name.ssl.ssl.keystore.location", "/etc/new.p12", cluster_default=True)
    with pytest.raises(DynamicConfigError, match="only per listener"):
        validate("ssl.keystore.location", "/etc/new.p12")
    with pytest.raises(DynamicConfigError, match="restart"):
        validate("listener.name.ssl.ssl.cipher.suites", "TLS_AES_128_GCM_SHA256")
    dynamic = DynamicBrokerConfigs(tmp_path)
    dynamic.replace({"listener.name.external.max.connections": "7",
                     "listener.name.ssl.ssl.keystore.password": "pw-Secr3t"}, cluster_default=False)
    merged = dynamic.merged(load_config({}, {}))
    assert merged.get("listener.name.external.max.connections") == 7
    assert merged.get("listener.name.ssl.ssl.keystore.password") == "pw-Secr3t"
    assert is_sensitive("listener.name.ssl.ssl.keystore.password") and not is_sensitive("ssl.keystore.location")
    assert "pw-Secr3t" not in str(redacted(dynamic.layer(cluster_default=False)))


def test_fetch_session_cache_slots_are_kafkas_and_never_negative() -> None:
    assert load_config({}, {}).get_int("max.incremental.fetch.session.cache.slots") == 1000
    assert load_config({}, {"max.incremental.fetch.session.cache.slots": "0"}).get_int(
        "max.incremental.fetch.session.cache.slots") == 0  # no sessions: every fetch sessionless
    with pytest.raises(ValueError, match="max.incremental.fetch.session.cache.slots"):
        load_config({}, {"max.incremental.fetch.session.cache.slots": "-1"})


def test_log_cleaner_io_throttle_is_applied_not_ignored() -> None:
    cfg = load_config({"log.cleaner.io.max.bytes.per.second": "1048576.5"}, {})
    assert cfg.ignored == {}
    assert cfg.get("log.cleaner.io.max.bytes.per.second") == 1048576.5
    assert load_config({}, {}).get("log.cleaner.io.max.bytes.per.second") == 1.7976931348623157e308  # Kafka's
