"""LogManager: topic lifecycle and persistence."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from suoi.log.config import LogConfig
from suoi.log.errors import (
    InvalidConfigError,
    InvalidPartitionsError,
    InvalidTopicError,
    TopicExistsError,
    UnknownTopicOrPartitionError,
)
from suoi.log.manager import LogManager
from tests.unit.log.log_helpers import Clock, batch


def _manager(dirs: list[Path], clock: Clock) -> LogManager:
    m = LogManager(dirs, LogConfig(segment_bytes=1 << 20), now_ms=clock)
    m.load()
    return m


def test_create_persist_reopen(tmp_path: Path, clock: Clock) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    m = _manager(dirs, clock)
    info = m.create_topic("orders", 3, {"retention.ms": "1000"})
    assert info.partitions == 3 and info.config.retention_ms == 1000 and info.config.segment_bytes == 1 << 20
    assert dict(info.configs) == {"retention.ms": "1000"}
    assert m.topic_by_id(info.topic_id) == info
    assert m.topic_by_id(uuid.UUID(bytes=info.topic_id.bytes)) == info  # an equal id (a decoded one), not the same object
    m.get_log("orders", 1).append(batch(4))  # type: ignore[union-attr]
    assert m.get_log("orders", 3) is None and m.get_log("nope", 0) is None
    placed = {m.get_log("orders", p).directory.parent for p in range(3)}  # type: ignore[union-attr]
    assert placed == set(dirs)  # spread over log dirs
    m.close()

    m = _manager(dirs, clock)
    assert set(m.topics()) == {"orders"}
    again = m.topics()["orders"]
    assert (again.topic_id, again.partitions, again.config) == (info.topic_id, 3, info.config)
    assert m.get_log("orders", 1).log_end_offset == 4  # type: ignore[union-attr]
    m.close()


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "x" * 250, "spa ce", "ünï"])
def test_invalid_topic_names(tmp_path: Path, clock: Clock, name: str) -> None:
    m = _manager([tmp_path], clock)
    with pytest.raises(InvalidTopicError) as info:
        m.create_topic(name, 1)
    assert info.value.error_code == 17


def test_create_errors(tmp_path: Path, clock: Clock) -> None:
    m = _manager([tmp_path], clock)
    m.create_topic("a.b_c-D9" + "x" * 241, 1)  # 249 chars is fine
    m.create_topic("t", 1)
    with pytest.raises(TopicExistsError) as e1:
        m.create_topic("t", 2)
    assert e1.value.error_code == 36
    with pytest.raises(InvalidPartitionsError) as e2:
        m.create_topic("u", 0)
    assert e2.value.error_code == 37
    with pytest.raises(InvalidConfigError):
        m.create_topic("u", 1, {"retention.ms": "x"})
    assert set(m.topics()) == {"a.b_c-D9" + "x" * 241, "t"}
    assert not list(tmp_path.glob("u-*"))


def test_delete_and_recreate_starts_clean(tmp_path: Path, clock: Clock) -> None:
    m = _manager([tmp_path], clock)
    old = m.create_topic("t", 2)
    m.get_log("t", 0).append(batch(3))  # type: ignore[union-attr]
    m.delete_topic("t")
    assert m.topics() == {} and m.topic_by_id(old.topic_id) is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("t-")]
    with pytest.raises(UnknownTopicOrPartitionError) as info:
        m.delete_topic("t")
    assert info.value.error_code == 3
    new = m.create_topic("t", 1, topic_id=uuid.UUID(int=7))
    assert new.topic_id == uuid.UUID(int=7)
    assert m.topic_by_id(uuid.UUID(int=7)) == new and m.topic_by_id(old.topic_id) is None  # the old id stays unknown
    assert m.get_log("t", 0).log_end_offset == 0  # type: ignore[union-attr]
    m.close()
    m = _manager([tmp_path], clock)
    assert m.topics()["t"].partitions == 1


def test_stray_and_half_deleted_dirs_at_startup(tmp_path: Path, clock: Clock) -> None:
    m = _manager([tmp_path], clock)
    m.create_topic("t", 1)
    m.close()
    (tmp_path / "ghost-0").mkdir()
    (tmp_path / f"t-5.{uuid.uuid4().hex}-delete").mkdir()
    m = _manager([tmp_path], clock)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "ghost-0" not in names and any(n.startswith("ghost-0.") and n.endswith("-stray") for n in names)
    assert not any(n.endswith("-delete") for n in names)
    m.create_topic("ghost", 1)
    assert m.get_log("ghost", 0).log_end_offset == 0  # type: ignore[union-attr]


def test_create_partitions_alter_configs_retention(tmp_path: Path, clock: Clock) -> None:
    m = _manager([tmp_path], clock)
    m.create_topic("t", 1)
    with pytest.raises(InvalidPartitionsError):
        m.create_partitions("t", 1)
    assert m.create_partitions("t", 3).partitions == 3
    log = m.get_log("t", 2)
    assert log is not None
    log.append(batch(2, ts=clock.now))
    m.alter_topic_configs("t", {"retention.ms": "1000", "flush.ms": "10"})
    assert log.config.retention_ms == 1000
    assert m.flush_due(clock.now + 10) == 1
    assert m.apply_retention(clock.now + 5000) == 1
    assert log.log_start_offset == 2
    m.close()
    m = _manager([tmp_path], clock)
    assert m.topics()["t"].configs == {"retention.ms": "1000", "flush.ms": "10"}
    assert m.get_log("t", 2).log_start_offset == 2  # type: ignore[union-attr]


def test_longest_topic_name_lifecycle(tmp_path: Path, clock: Clock) -> None:
    """249 chars + '-<partition>' fits NAME_MAX; the '-delete' rename must too."""
    name = "t" * 249
    m = _manager([tmp_path], clock)
    m.create_topic(name, 11)
    m.get_log(name, 10).append(batch())  # type: ignore[union-attr]
    m.close()
    m = _manager([tmp_path], clock)
    assert m.get_log(name, 10).log_end_offset == 3  # type: ignore[union-attr]
    m.delete_topic(name)
    assert [p.name for p in tmp_path.iterdir()] == ["__suoi_topics"]
