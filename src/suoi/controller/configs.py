"""AlterConfigs and IncrementalAlterConfigs decisions (Kafka's ConfigurationControlManager).

Topic overrides are validated as a whole with ``LogConfig.from_topic_configs``; broker
resources ("" = cluster default, or a broker id) with the optional
``ControllerConfig.broker_config_validator``. The records set or delete single keys.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from suoi.configdefs import LIST_CONFIGS as KAFKA_LIST_CONFIGS
from suoi.controller import client_metrics as _client_metrics
from suoi.controller.errors import ApiError
from suoi.controller.image import ConfigResourceType
from suoi.controller.messages import (
    AlterConfigsResource,
    AlterConfigsResult,
    ControllerResult,
    IncrementalAlterConfigsResource,
    OpType,
)
from suoi.controller.records import Config
from suoi.log.config import LogConfig
from suoi.log.errors import InvalidConfigError
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.controller.context import OperationContext

__all__ = ["alter_configs", "incremental_alter_configs"]

#: Configs of Kafka's LIST type (APPEND / SUBTRACT allowed), and the client-metrics ones.
LIST_CONFIGS = KAFKA_LIST_CONFIGS | _client_metrics.LIST_KEYS


def _check_resource(c: OperationContext, rtype: int, name: str) -> None:
    if rtype == ConfigResourceType.TOPIC:
        if c.state.topic_id(name) is None:
            raise ApiError(ErrorCode.unknown_topic_or_partition, f"The topic '{name}' does not exist.")
    elif rtype == ConfigResourceType.BROKER:
        if name and not (name.isdigit() and int(name) >= 0):
            raise ApiError(ErrorCode.invalid_request, f"Illegal broker ID {name}")
    elif rtype == ConfigResourceType.CLIENT_METRICS:
        pass  # a subscription exists once it has configs; its name is checked with them
    else:
        raise ApiError(ErrorCode.invalid_request, f"Unsupported resource type {rtype}.")


def _validate(c: OperationContext, rtype: int, name: str, overrides: Mapping[str, str]) -> None:
    if rtype == ConfigResourceType.TOPIC:
        try:
            LogConfig.from_topic_configs(c.config.log_config, overrides)
        except InvalidConfigError as e:
            raise ApiError(ErrorCode.invalid_config, str(e)) from None
    elif rtype == ConfigResourceType.CLIENT_METRICS:
        _client_metrics.validate(name, overrides)
    elif c.config.broker_config_validator is not None:
        try:
            c.config.broker_config_validator(name, overrides)
        except ValueError as e:
            raise ApiError(ErrorCode.invalid_config, str(e)) from None


def _stage_diff(c: OperationContext, rtype: int, name: str, old: Mapping[str, str], new: Mapping[str, str]) -> None:
    for k in sorted(set(old) | set(new)):
        if old.get(k) != new.get(k):
            c.stage(Config(resource_type=rtype, resource_name=name, name=k, value=new.get(k)))


def alter_configs(c: OperationContext, resources: Sequence[AlterConfigsResource], validate_only: bool
                  ) -> ControllerResult[list[AlterConfigsResult]]:
    results: list[AlterConfigsResult] = []
    for r in resources:
        try:
            _check_resource(c, r.resource_type, r.resource_name)
            new: dict[str, str] = {}
            for k, v in r.configs.items():
                if v is None:
                    raise ApiError(ErrorCode.invalid_request, f"Null value not supported for : {k}")
                new[k] = v
            _validate(c, r.resource_type, r.resource_name, new)
        except ApiError as e:
            results.append(AlterConfigsResult(r.resource_type, r.resource_name, e.code, e.message))
            continue
        if not validate_only:
            old = dict(c.state.configs(r.resource_type, r.resource_name))
            _stage_diff(c, r.resource_type, r.resource_name, old, new)
        results.append(AlterConfigsResult(r.resource_type, r.resource_name))
    return c.finish(results)


def _default(c: OperationContext, rtype: int, key: str) -> str | None:
    if rtype == ConfigResourceType.TOPIC:
        return c.config.log_config.to_topic_configs().get(key)
    return None


def _parts(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


def incremental_alter_configs(c: OperationContext, resources: Sequence[IncrementalAlterConfigsResource],
                              validate_only: bool) -> ControllerResult[list[AlterConfigsResult]]:
    results: list[AlterConfigsResult] = []
    for r in resources:
        try:
            _check_resource(c, r.resource_type, r.resource_name)
            if any(n > 1 for n in Counter(op.name for op in r.ops).values()):
                raise ApiError(ErrorCode.invalid_request, "Error due to duplicate config keys")
            old = dict(c.state.configs(r.resource_type, r.resource_name))
            new = dict(old)
            for op in r.ops:
                try:
                    kind = OpType(op.op)
                except ValueError:
                    raise ApiError(ErrorCode.invalid_request, f"Unknown config operation {op.op}.") from None
                if kind == OpType.SET:
                    if op.value is None:
                        raise ApiError(ErrorCode.invalid_request, f"Null value not supported for : {op.name}")
                    new[op.name] = op.value
                elif kind == OpType.DELETE:
                    new.pop(op.name, None)
                else:  # APPEND / SUBTRACT
                    if op.name not in LIST_CONFIGS:
                        raise ApiError(ErrorCode.invalid_config,
                                       f"Can't {kind.name} to key {op.name} because its type is not LIST.")
                    current = _parts(new.get(op.name, _default(c, r.resource_type, op.name)))
                    items = _parts(op.value)
                    if kind == OpType.APPEND:
                        current += [i for i in items if i not in current]
                    else:
                        current = [i for i in current if i not in items]
                    new[op.name] = ",".join(current)
            _validate(c, r.resource_type, r.resource_name, new)
        except ApiError as e:
            results.append(AlterConfigsResult(r.resource_type, r.resource_name, e.code, e.message))
            continue
        if not validate_only:
            _stage_diff(c, r.resource_type, r.resource_name, old, new)
        results.append(AlterConfigsResult(r.resource_type, r.resource_name))
    return c.finish(results)
