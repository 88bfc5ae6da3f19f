"""meta.properties at start-up: who may format itself, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from suoi.log.meta_properties import (
    FORMAT_HINT,
    StorageFormatError,
    StorageLayout,
    ensure_formatted,
    random_uuid,
    read_meta,
    valid_cluster_id,
)


def layout(tmp_path: Path, voters: list[int], configured: str | None = None, node: int = 1) -> StorageLayout:
    return StorageLayout.of([tmp_path / "a", tmp_path / "b"], tmp_path / "meta", node, configured, voters)


def test_the_only_voter_formats_itself_once(tmp_path: Path) -> None:
    cid, note = ensure_formatted(layout(tmp_path, [1]))
    assert valid_cluster_id(cid) and note is not None and "its own quorum" in note and cid in note
    metas = [read_meta(tmp_path / d) or {} for d in ("a", "b", "meta")]
    assert [m.get("cluster.id") for m in metas] == [cid] * 3
    assert ensure_formatted(layout(tmp_path, [1])) == (cid, None)  # formatted: same id, nothing to say


def test_a_node_without_process_roles_formats_itself(tmp_path: Path) -> None:
    cid, note = ensure_formatted(StorageLayout.of([tmp_path / "a"], None, 1, None, [1]))  # its own quorum
    assert valid_cluster_id(cid) and read_meta(tmp_path / "a")["node.id"] == "1"  # type: ignore[index]


def test_one_voter_of_several_without_an_id_refuses_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(StorageFormatError, match="is not formatted") as exc:
        ensure_formatted(layout(tmp_path, [1, 2, 3]))
    assert FORMAT_HINT in str(exc.value)
    assert not any((tmp_path / d).exists() for d in ("a", "b", "meta"))


def test_configured_id_formats_and_must_then_agree(tmp_path: Path) -> None:
    cid = random_uuid()
    assert ensure_formatted(layout(tmp_path, [1, 2, 3], cid))[0] == cid
    assert ensure_formatted(layout(tmp_path, [1, 2, 3]))[0] == cid  # from meta.properties now
    other = random_uuid()
    with pytest.raises(StorageFormatError) as exc:
        ensure_formatted(layout(tmp_path, [1, 2, 3], other))
    assert cid in str(exc.value) and other in str(exc.value)


def test_directories_of_another_node_or_of_two_clusters_are_refused(tmp_path: Path) -> None:
    ensure_formatted(layout(tmp_path, [1]))
    with pytest.raises(StorageFormatError, match="node.id=1"):
        ensure_formatted(layout(tmp_path, [2], node=2))
    (tmp_path / "b" / "meta.properties").write_text(
        (tmp_path / "b" / "meta.properties").read_text().replace("cluster.id=", "cluster.id=X"))
    with pytest.raises(StorageFormatError, match="different clusters"):
        ensure_formatted(layout(tmp_path, [1]))


def test_random_uuid_shape() -> None:
    ids = {random_uuid() for _ in range(200)}
    assert len(ids) == 200
    assert all(valid_cluster_id(i) and not i.startswith("-") for i in ids)
    assert not valid_cluster_id("short") and not valid_cluster_id("!" * 22)
