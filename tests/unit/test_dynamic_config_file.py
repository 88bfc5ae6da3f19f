"""`dynamic-broker-configs.json`, the node's copy of the metadata log's broker ConfigRecords:
replaced atomically without an fsync (it is written on the event loop, and the metadata log sets
it again at start), so a load ignores a leftover temporary file and an unreadable copy."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from suoi.dynamic_config import FILE_NAME, DynamicBrokerConfigs


def test_round_trip_without_an_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    dynamic = DynamicBrokerConfigs(tmp_path)
    dynamic.replace({"log.retention.ms": "60000"}, cluster_default=True)
    dynamic.replace({"log.segment.bytes": "1048576"}, cluster_default=False)
    assert synced == []
    again = DynamicBrokerConfigs(tmp_path)
    again.load()
    assert again.layer(cluster_default=True) == {"log.retention.ms": "60000"}
    assert again.layer(cluster_default=False) == {"log.segment.bytes": "1048576"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE_NAME]


def test_a_leftover_temporary_file_is_removed_not_read(tmp_path: Path) -> None:
    DynamicBrokerConfigs(tmp_path).replace({"log.retention.ms": "60000"}, cluster_default=True)
    (tmp_path / (FILE_NAME + ".tmp")).write_text('{"version": 1, "cluster_default": {"log.retention.ms": "1"')
    dynamic = DynamicBrokerConfigs(tmp_path)
    dynamic.load()
    assert dynamic.layer(cluster_default=True) == {"log.retention.ms": "60000"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE_NAME]


def test_an_unreadable_copy_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / FILE_NAME).write_text("")  # what an OS crash after an unsynced write may leave
    dynamic = DynamicBrokerConfigs(tmp_path)
    with caplog.at_level(logging.WARNING, logger="suoi.config"):
        dynamic.load()
    assert dynamic.layer(cluster_default=True) == {} and dynamic.layer(cluster_default=False) == {}
    assert any("ignoring unreadable" in r.getMessage() for r in caplog.records)
