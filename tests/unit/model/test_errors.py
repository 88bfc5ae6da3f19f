"""One ErrorCode for every package: kio's enum (Kafka's table), reached through suoi.model."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import kio.schema.errors
import pytest

import suoi.log.errors
import suoi.log.producer_state
import suoi.protocol.record_batch
from suoi.model import ErrorCode, KafkaError

SRC = Path(__file__).resolve().parents[3] / "src" / "suoi"


def test_error_code_is_kafkas_table_with_retriable() -> None:
    assert ErrorCode is kio.schema.errors.ErrorCode
    assert (ErrorCode.none, ErrorCode.unknown_server_error) == (0, -1)
    assert (int(ErrorCode.not_leader_or_follower), ErrorCode.not_leader_or_follower.retriable) == (6, True)
    assert (int(ErrorCode.not_enough_replicas), ErrorCode.not_enough_replicas.retriable) == (19, True)
    assert (int(ErrorCode.topic_already_exists), ErrorCode.topic_already_exists.retriable) == (36, False)
    assert (int(ErrorCode.producer_fenced), ErrorCode.producer_fenced.retriable) == (90, False)
    assert ErrorCode(107) is ErrorCode.ineligible_replica  # looked up by the code on the wire


def test_kafka_error_carries_an_error_code() -> None:
    assert KafkaError("x").error_code is ErrorCode.unknown_server_error
    assert KafkaError("x", 74).error_code is ErrorCode.fenced_leader_epoch


def _error_classes() -> list[type]:
    modules = (suoi.log.errors, suoi.log.producer_state, suoi.protocol.record_batch)
    return [cls for m in modules for _, cls in inspect.getmembers(m, inspect.isclass)
            if hasattr(cls, "error_code") and cls.__module__ == m.__name__]


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_storage_and_record_errors_carry_error_codes_not_ints(cls: type) -> None:
    assert isinstance(cls.error_code, ErrorCode)


def test_no_package_declares_its_own_error_enum() -> None:
    """An IntEnum whose members are Kafka error names is a second error table: use ErrorCode."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
            if not bases & {"IntEnum", "Enum", "IntFlag"}:
                continue
            members = {t.id.lower() for stmt in node.body if isinstance(stmt, ast.Assign)
                       for t in stmt.targets if isinstance(t, ast.Name)}
            clash = members & set(ErrorCode.__members__) - {"none"}
            if len(clash) >= 2:
                offenders.append(f"{path.relative_to(SRC)}:{node.name} {sorted(clash)}")
    assert offenders == []
