"""The BROKER_LOGGER config resource (KIP-412) on a real single KRaft node: log levels read and
changed at run time with kafka-python's admin client, raw requests (exact error codes) and
`suoi configs --entity-type broker-loggers`; a level set shows in the node's log at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kio.schema.alter_configs.v2.request import AlterableConfig as LegacyConfig
from kio.schema.alter_configs.v2.request import AlterConfigsRequest
from kio.schema.alter_configs.v2.request import AlterConfigsResource as LegacyResource
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.describe_configs.v4.request import DescribeConfigsRequest, DescribeConfigsResource
from kio.schema.incremental_alter_configs.v1.request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)
from kio.static.primitive import i8

from suoi.model import ErrorCode
from suoi.testing import EmbeddedBroker
from suoi.testing.embedded import free_port
from tests.conftest import wait_until
from tests.e2e.cli import fails, ok, ok_json
from tests.e2e.helpers import create_topic
from tests.integration.support import kraft_combined_overrides
from tests.rawclient import RawClient

LOGGER = 8
SET, DELETE, APPEND = 0, 1, 2


def _log(broker: EmbeddedBroker) -> str:
    return broker.log_path.read_text(errors="replace")


def _levels(admin: KafkaAdminClient) -> dict[str, dict[str, Any]]:
    described = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER_LOGGER, "1")])
    return described["broker_logger"]["1"]


def _alter(bootstrap: str, name: str, ops: list[tuple[str, int, str | None]], validate_only: bool = False,
           *more: Any) -> list[tuple[int, int, str, int]]:
    resource = AlterConfigsResource(resource_type=i8(LOGGER), resource_name=name, configs=tuple(
        AlterableConfig(name=k, config_operation=i8(op), value=v) for k, op, v in ops))
    with RawClient(bootstrap) as c:
        response = c.request(IncrementalAlterConfigsRequest(resources=(resource, *more), validate_only=validate_only))
    return [(r.error_code.value, r.resource_type, r.resource_name, len(r.error_message or "")) for r in response.responses]


def _code(bootstrap: str, name: str, ops: list[tuple[str, int, str | None]], validate_only: bool = False) -> int:
    ((code, _type, _name, _len),) = _alter(bootstrap, name, ops, validate_only)
    return code


def test_set_shows_debug_lines_and_delete_restores(broker: EmbeddedBroker, bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        levels = _levels(admin)
        assert {"root", "suoi", "suoi.api", "suoi.log", "suoi.coordinator.txn", "suoi.raft"} <= set(levels)
        assert all(not n.startswith("kafka") for n in levels)
        assert levels["suoi.api"] == {"value": "INFO", "read_only": False, "is_sensitive": False, "synonyms": [],
                                      "config_source": "DYNAMIC_BROKER_LOGGER_CONFIG", "config_type": "UNKNOWN",
                                      "documentation": None}
        assert "DEBUG suoi.api:" not in _log(broker)

        admin.alter_configs([ConfigResource(ConfigResourceType.BROKER_LOGGER, "1", configs={"suoi.api": "DEBUG"})],
                            incremental=True)
        levels = _levels(admin)
        assert (levels["suoi.api"]["value"], levels["suoi"]["value"], levels["root"]["value"]) == ("DEBUG", "INFO", "INFO")
        with RawClient(bootstrap) as c:  # a new connection: its ApiVersions is logged at DEBUG
            c.request(ApiVersionsRequest(
                client_software_name="loggers-test", client_software_version="1"))
        wait_until(lambda: "DEBUG suoi.api: ApiVersions v3" in _log(broker) and "loggers-test 1" in _log(broker),
                   message="a DEBUG line of suoi.api in the node's log")
        assert "suoi.api: Updating the log level of suoi.api to DEBUG" in _log(broker)

        assert _code(bootstrap, "1", [("suoi.api", DELETE, None)]) == ErrorCode.none
        assert _levels(admin)["suoi.api"]["value"] == "INFO"  # the parent's (suoi -> root) again
        assert "suoi.api: Unset the log level of suoi.api" in _log(broker)
        lines = len(_log(broker).splitlines())
        with RawClient(bootstrap) as c:
            c.request(ApiVersionsRequest(
                client_software_name="after-unset", client_software_version="1"))
            assert ok("configs", "--describe", "--entity-type", "broker-loggers", "--entity-name", "1",
                      "--bootstrap-server", bootstrap).startswith("Dynamic configs for broker-logger 1 are:\n")
        assert "after-unset" not in "\n".join(_log(broker).splitlines()[lines:])
    finally:
        admin.close()


def test_refusals_as_kafka(bootstrap: str) -> None:
    assert _code(bootstrap, "1", [("suoi.api", SET, "LOUD")]) == ErrorCode.invalid_config
    assert _code(bootstrap, "1", [("suoi.api", SET, "WARNING")]) == ErrorCode.invalid_config  # Kafka's names only
    assert _code(bootstrap, "1", [("no.such.logger", SET, "DEBUG")]) == ErrorCode.invalid_config
    assert _code(bootstrap, "1", [("root", DELETE, None)]) == ErrorCode.invalid_request
    assert _code(bootstrap, "1", [("suoi.api", APPEND, "DEBUG")]) == ErrorCode.invalid_request
    assert _code(bootstrap, "1", [("suoi.api", SET, None)]) == ErrorCode.invalid_request
    assert _code(bootstrap, "2", [("suoi.api", SET, "DEBUG")]) == ErrorCode.invalid_request  # another broker's
    assert _code(bootstrap, "x", [("suoi.api", SET, "DEBUG")]) == ErrorCode.invalid_request
    twice = AlterConfigsResource(resource_type=i8(LOGGER), resource_name="1", configs=(
        AlterableConfig(name="suoi.log", config_operation=i8(SET), value="ERROR"),))
    assert [code for code, *_rest in _alter(bootstrap, "1", [("suoi.log", SET, "ERROR")], False, twice)] == [
        ErrorCode.invalid_request, ErrorCode.invalid_request]  # a resource named twice: neither applied
    # validate_only: checked, nothing changed; a refused op leaves the others of its resource undone
    assert _code(bootstrap, "1", [("suoi.log", SET, "TRACE")], validate_only=True) == ErrorCode.none
    assert _code(bootstrap, "1", [("suoi.log", SET, "ERROR"), ("suoi.raft", SET, "BAD")]) == ErrorCode.invalid_config

    with RawClient(bootstrap) as c:
        described = c.request(DescribeConfigsRequest(resources=(
            DescribeConfigsResource(resource_type=i8(LOGGER), resource_name="1",
                                    configuration_keys=("suoi.log", "suoi.raft", "no.such.logger")),
            DescribeConfigsResource(resource_type=i8(LOGGER), resource_name="2", configuration_keys=None)),
            include_synonyms=True, include_documentation=False))
        mine, other = described.results
        assert [(x.name, x.value, x.config_source) for x in mine.configs] == [("suoi.log", "INFO", 6), ("suoi.raft", "INFO", 6)]
        assert (other.error_code, other.error_message, list(other.configs)) == (
            ErrorCode.invalid_request, "Unexpected broker id, expected 1 but received 2", [])
        legacy = c.request(AlterConfigsRequest(resources=(LegacyResource(
            resource_type=i8(LOGGER), resource_name="1", configs=(LegacyConfig(name="suoi.api", value="DEBUG"),)),),
            validate_only=False))
        assert [r.error_code for r in legacy.responses] == [ErrorCode.invalid_request]  # not on legacy AlterConfigs


def test_mixed_request_answers_in_order_and_cli(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic)
    topic_change = AlterConfigsResource(resource_type=i8(2), resource_name=topic, configs=(
        AlterableConfig(name="retention.ms", config_operation=i8(SET), value="60000"),))
    answers = _alter(bootstrap, "1", [("suoi.net", SET, "TRACE")], False, topic_change)
    assert [(code, rtype, name) for code, rtype, name, _len in answers] == [(0, LOGGER, "1"), (0, 2, topic)]
    doc = ok_json("configs", "--describe", "--entity-type", "broker-loggers", "--bootstrap-server", bootstrap)
    (entity,) = doc["entities"]
    by_name = {c["name"]: c for c in entity["configs"]}
    assert (entity["entity_name"], by_name["suoi.net"]["value"], by_name["suoi.net"]["source"]) == (
        "1", "TRACE", "DYNAMIC_BROKER_LOGGER_CONFIG")

    assert ok("configs", "--alter", "--entity-type", "broker-loggers", "--entity-name", "1", "--add-config",
              "suoi.api=WARN,suoi.log=ERROR", "--delete-config", "suoi.net", "--bootstrap-server", bootstrap
              ) == "Completed updating config for broker-logger 1.\n"
    out = ok("configs", "--describe", "--entity-type", "broker-loggers", "--entity-name", "1",
             "--bootstrap-server", bootstrap).splitlines()
    assert {"  suoi.api=WARN sensitive=false synonyms={}", "  suoi.log=ERROR sensitive=false synonyms={}",
            "  suoi.net=INFO sensitive=false synonyms={}", "  root=INFO sensitive=false synonyms={}"} <= set(out)
    assert "Valid log levels are FATAL, ERROR, WARN, INFO, DEBUG, TRACE" in fails(
        "configs", "--alter", "--entity-type", "broker-loggers", "--entity-name", "1", "--add-config",
        "suoi.api=NOISY", "--bootstrap-server", bootstrap)
    ok("configs", "--alter", "--entity-type", "broker-loggers", "--entity-name", "1", "--delete-config",
       "suoi.api,suoi.log", "--bootstrap-server", bootstrap)


def test_authorized_on_the_cluster(tmp_path: Path) -> None:
    """ALTER_CONFIGS / DESCRIBE_CONFIGS on the cluster, checked by the broker itself even on the
    client listener (where the other resources' changes are left to the controller)."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    port, cport = free_port(), free_port()
    locked = EmbeddedBroker(tmp_path, port=port, overrides=kraft_combined_overrides(port, cport, **{
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "true"}))
    locked.start()
    try:
        bootstrap = f"127.0.0.1:{port}"

        def cluster(op: AclOperation, permission: AclPermissionType) -> AclBinding:
            return AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, "User:ANONYMOUS",
                              "*", op, permission)

        admin = AdminClient({"bootstrap.servers": bootstrap})
        for f in admin.create_acls([cluster(AclOperation.CLUSTER_ACTION, AclPermissionType.ALLOW),
                                    cluster(AclOperation.DESCRIBE, AclPermissionType.ALLOW),
                                    cluster(AclOperation.ALTER_CONFIGS, AclPermissionType.DENY),
                                    cluster(AclOperation.DESCRIBE_CONFIGS, AclPermissionType.DENY)]).values():
            f.result(timeout=10)

        def describe() -> Any:
            with RawClient(bootstrap) as c:
                (result,) = c.request(DescribeConfigsRequest(resources=(DescribeConfigsResource(
                    resource_type=i8(LOGGER), resource_name="1", configuration_keys=None),),
                    include_synonyms=False, include_documentation=False)).results
            return result

        denied = wait_until(lambda: (r := describe()).error_code == ErrorCode.cluster_authorization_failed and r,
                            message="the DENY bindings in force")
        assert list(denied.configs) == []
        topic_change = AlterConfigsResource(resource_type=i8(2), resource_name="no-such-topic", configs=(
            AlterableConfig(name="retention.ms", config_operation=i8(SET), value="60000"),))
        answers = _alter(bootstrap, "1", [("suoi.api", SET, "DEBUG")], False, topic_change)
        by_type = {rtype: code for code, rtype, _name, _len in answers}
        assert by_type[LOGGER] == ErrorCode.cluster_authorization_failed
        assert by_type[2] == ErrorCode.unknown_topic_or_partition  # went on to the controller
        assert "Updating the log level" not in _log(locked)
    finally:
        locked.stop()
