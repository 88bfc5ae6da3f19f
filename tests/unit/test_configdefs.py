"""Kafka's config table: parsing with Kafka's wording, the security features suoi refuses, and
Kafka's synonym groups (DescribeConfigs)."""

from __future__ import annotations

import pytest

from suoi.configdefs import (
    BROKER_CONFIGS,
    LIST_CONFIGS,
    TOPIC_CONFIGS,
    ConfigValueError,
    broker_config_synonyms,
    topic_config_synonyms,
    unimplemented_security_feature,
)


def test_the_table_is_kafka_4s() -> None:
    # Kafka 4.0's 33 topic configs, plus the 8 Confluent Server/Redpanda schema id validation ones
    assert len(BROKER_CONFIGS) > 290 and len(TOPIC_CONFIGS) == 33 + 8
    assert "zookeeper.connect" not in BROKER_CONFIGS and "message.format.version" not in TOPIC_CONFIGS
    assert "share.coordinator.threads" in BROKER_CONFIGS  # new in 4.0
    d = BROKER_CONFIGS["log.retention.ms"]
    assert (d.type, d.default, d.mode, d.dynamic) == ("long", None, "cluster-wide", True)
    assert BROKER_CONFIGS["ssl.keystore.password"].sensitive and not BROKER_CONFIGS["log.dirs"].dynamic
    assert TOPIC_CONFIGS["message.timestamp.after.max.ms"].default == "3600000"
    assert {"cleanup.policy", "log.cleanup.policy", "follower.replication.throttled.replicas"} <= LIST_CONFIGS


@pytest.mark.parametrize("table,name,raw,message", [
    (TOPIC_CONFIGS, "retention.ms", "abc", "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
    (TOPIC_CONFIGS, "retention.ms", "-2", "Invalid value -2 for configuration retention.ms: Value must be at least -1"),
    (TOPIC_CONFIGS, "segment.bytes", "4294967296",
     "Invalid value 4294967296 for configuration segment.bytes: Not a number of type INT"),
    (TOPIC_CONFIGS, "min.cleanable.dirty.ratio", "1.5",
     "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"),
    (TOPIC_CONFIGS, "cleanup.policy", "delete,shred",
     "Invalid value delete,shred for configuration cleanup.policy: String must be one of: compact, delete"),
    (TOPIC_CONFIGS, "preallocate", "yes",
     "Invalid value yes for configuration preallocate: Expected value to be either true or false"),
    (TOPIC_CONFIGS, "compression.gzip.level", "0",
     "Invalid value 0 for configuration compression.gzip.level: Value must be at least 1"),
    (BROKER_CONFIGS, "group.consumer.migration.policy", "sideways",
     "Invalid value sideways for configuration group.consumer.migration.policy: String must be one of "
     "(case insensitive): DISABLED, DOWNGRADE, UPGRADE, BIDIRECTIONAL"),
    (BROKER_CONFIGS, "offsets.topic.replication.factor", "40000",
     "Invalid value 40000 for configuration offsets.topic.replication.factor: Not a number of type SHORT"),
])
def test_invalid_values_get_kafkas_wording(table, name: str, raw: str, message: str) -> None:  # noqa: ANN001
    with pytest.raises(ConfigValueError) as raised:
        table[name].parse(raw)
    assert str(raised.value) == message


def test_valid_values_parse_to_kafkas_types() -> None:
    assert TOPIC_CONFIGS["cleanup.policy"].parse("") == []  # an empty list is legal
    assert TOPIC_CONFIGS["cleanup.policy"].parse(" compact , delete ") == ["compact", "delete"]
    assert TOPIC_CONFIGS["compression.gzip.level"].parse("-1") == -1  # "[1,...,9] or -1"
    assert TOPIC_CONFIGS["unclean.leader.election.enable"].parse("TRUE") is True
    assert TOPIC_CONFIGS["leader.replication.throttled.replicas"].parse("0:1,1:2") == ["0:1", "1:2"]
    assert BROKER_CONFIGS["group.consumer.migration.policy"].parse("upgrade") == "upgrade"
    assert BROKER_CONFIGS["log.segment.bytes"].parse("1024", validators=False) == 1024  # suoi checks its own range


def test_security_settings_are_named_by_feature_until_implemented() -> None:
    assert unimplemented_security_feature("ssl.keymanager.algorithm") == "this TLS (SSL) setting"
    assert unimplemented_security_feature("sasl.kerberos.min.time.before.relogin") == "this SASL setting"
    assert unimplemented_security_feature("authorizer.class.name") is None  # suoi.authorizer; config_security checks it
    assert unimplemented_security_feature("listener.name.internal.ssl.keymanager.algorithm") is not None
    for oauth in ("sasl.oauthbearer.token.endpoint.url", "listener.name.c.oauthbearer.sasl.login.callback.handler.class",
                  "listener.name.c.oauthbearer.sasl.login.refresh.buffer.seconds",
                  "listener.name.client.oauthbearer.sasl.jaas.config", "sasl.oauthbearer.jwks.endpoint.url",
                  "listener.name.client.oauthbearer.sasl.server.callback.handler.class",
                  "listener.name.client.sasl.oauthbearer.expected.audience"):
        assert unimplemented_security_feature(oauth) is None, oauth  # OAUTHBEARER (suoi.security.oauthbearer)
    assert unimplemented_security_feature("background.threads") is None
    # implemented by suoi.security: TLS keystores, SASL PLAIN/SCRAM, per listener too
    for name in ("ssl.keystore.location", "sasl.enabled.mechanisms", "security.inter.broker.protocol",
                 "listener.name.internal.ssl.keystore.location", "listener.name.client.scram-sha-512.sasl.jaas.config"):
        assert unimplemented_security_feature(name) is None, name


def test_synonym_groups_are_kafkas() -> None:
    assert topic_config_synonyms("retention.ms") == ("log.retention.ms", "log.retention.minutes", "log.retention.hours")
    assert topic_config_synonyms("max.message.bytes") == ("message.max.bytes",)
    assert topic_config_synonyms("compression.type") == ("compression.type",)
    assert topic_config_synonyms("leader.replication.throttled.replicas") == ()
    assert broker_config_synonyms("log.roll.hours") == ("log.roll.ms", "log.roll.hours")
    assert broker_config_synonyms("log.flush.interval.ms") == ("log.flush.interval.ms", "log.flush.scheduler.interval.ms")
    assert broker_config_synonyms("log.flush.scheduler.interval.ms") == ("log.flush.scheduler.interval.ms",)
    assert broker_config_synonyms("num.partitions") == ("num.partitions",)
