"""Cluster ids and storage formatting (kafka-storage.sh's `suoi storage`), end to end.

Nodes of a multi-voter quorum with no cluster id refuse to start (one ERROR line naming the
fix); formatted with one id they form a quorum; a node of another cluster is refused by the
others with INCONSISTENT_CLUSTER_ID and an ERROR naming both ids, on both sides.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from suoi.cli.main import main
from suoi.log.meta_properties import FORMAT_HINT, read_meta
from tests.conftest import wait_until
from tests.integration.kraft_cluster import CLUSTER_ID, KRaftCluster

UUID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
#: (logger, sender or refuser) of an INCONSISTENT_CLUSTER_ID line
MISMATCH_KEY = re.compile(r"ERROR (\S+): INCONSISTENT_CLUSTER_ID: (?:\w+ (from node \d+)|(.+?) refused our)")


def suoi(*argv: str) -> tuple[int, str, str]:
    """Run a `suoi` command in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(argv))
        except SystemExit as exc:
            rc = int(exc.code or 0)
    return rc, out.getvalue(), err.getvalue()


def write_config(path: Path, props: dict[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return path


def node_config(cluster: KRaftCluster, node_id: int) -> Path:
    """The server.properties a node of `cluster` runs with (its overrides and log.dirs)."""
    node = cluster.nodes[node_id]
    node.data_dir.mkdir(parents=True, exist_ok=True)
    props = {**node.overrides, "log.dirs": ",".join(map(str, node.log_dirs))}
    return write_config(node.data_dir / "server.properties", props)


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if " ERROR " in line]


def test_random_uuid_is_a_kafka_uuid() -> None:
    ids = set()
    for _ in range(20):
        rc, out, _ = suoi("storage", "random-uuid")
        assert rc == 0
        assert UUID_RE.match(out.strip()), out
        assert not out.startswith("-")
        ids.add(out.strip())
    assert len(ids) == 20


def test_format_every_dir_refuse_formatted_and_info(tmp_path: Path) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    meta_dir = tmp_path / "meta"
    cfg = write_config(tmp_path / "server.properties", {
        "process.roles": "broker,controller", "node.id": "4",
        "listeners": "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.voters": "4@127.0.0.1:19093,5@127.0.0.1:19095",
        "log.dirs": ",".join(map(str, dirs)), "metadata.log.dir": str(meta_dir)})
    rc, out, err = suoi("storage", "info", "--config", str(cfg))
    assert rc == 1 and f"{dirs[0]} does not exist" in out
    dirs[0].mkdir()
    assert f"{dirs[0]} is not formatted." in suoi("storage", "info", "--config", str(cfg))[1]

    rc, out, err = suoi("storage", "format", "--cluster-id", "not-a-uuid", "--config", str(cfg))
    assert rc == 1 and "not a Kafka Uuid" in err and not (dirs[0] / "meta.properties").exists()

    cid = suoi("storage", "random-uuid")[1].strip()
    rc, out, err = suoi("storage", "format", "--cluster-id", cid, "--config", str(cfg))
    assert rc == 0, err
    assert out.splitlines() == [f"Formatting {d} with cluster.id {cid} (node.id 4)." for d in [*dirs, meta_dir]]
    metas = [read_meta(d) for d in [*dirs, meta_dir]]
    assert all(m is not None and (m["version"], m["cluster.id"], m["node.id"]) == ("1", cid, "4") for m in metas)
    assert len({m["directory.id"] for m in metas if m}) == 3  # one id per directory
    assert all(UUID_RE.match(m["directory.id"]) for m in metas if m)

    rc, out, err = suoi("storage", "format", "--cluster-id", cid, "--config", str(cfg))
    assert rc == 1
    assert err.strip() == (f"suoi storage: error: Log directory {dirs[0]} is already formatted. "
                           "Use --ignore-formatted to ignore this directory and format the others.")
    rc, out, err = suoi("storage", "format", "--cluster-id", cid, "--config", str(cfg), "--ignore-formatted")
    assert rc == 0 and out.strip() == "All of the log directories are already formatted."
    other = suoi("storage", "random-uuid")[1].strip()
    rc, out, err = suoi("storage", "format", "-t", other, "-c", str(cfg), "-g")
    assert rc == 1 and cid in err and other in err
    assert read_meta(dirs[0])["cluster.id"] == cid  # type: ignore[index]
    rc, out, err = suoi("storage", "format", "-t", cid, "-c", str(cfg), "--standalone", "-g")
    assert rc == 1 and "--standalone" in err  # two voters: not a standalone quorum

    rc, out, err = suoi("storage", "info", "--config", str(cfg))
    assert rc == 0, out
    assert out.startswith("Found log directories:\n" + "".join(f"  {d}\n" for d in [*dirs, meta_dir]))
    found = [line for line in out.splitlines() if line.startswith("Found metadata: ")]
    assert len(found) == 3
    assert all(f"cluster.id={cid}" in line and "node.id=4" in line and "version=1" in line for line in found)


def test_three_nodes_without_cluster_id_refuse_then_form_a_quorum_once_formatted(tmp_path: Path) -> None:
    cluster = KRaftCluster(tmp_path, 3)
    for node in cluster.nodes.values():
        del node.overrides["cluster.id"]  # three Kafka-style property files without cluster.id
    for node in cluster.nodes.values():
        node.launch()
    try:
        for node in cluster.nodes.values():
            assert node.proc is not None
            assert node.proc.wait(30) == 1
        for i, node in cluster.nodes.items():
            errors = error_lines(node.logs())
            assert len(errors) == 1, node.logs()
            assert f"node {i} is not formatted" in errors[0] and FORMAT_HINT in errors[0]
            assert "Traceback" not in node.logs()
            assert read_meta(node.log_dirs[0]) is None  # it invented no id
    finally:
        for node in cluster.nodes.values():
            node.stop()

    cid = suoi("storage", "random-uuid")[1].strip()
    for i in cluster.nodes:
        rc, out, err = suoi("storage", "format", "--cluster-id", cid, "--config", str(node_config(cluster, i)))
        assert rc == 0, err
    try:
        cluster.start()  # every node in every node's Metadata
        for node in cluster.nodes.values():
            assert len(error_lines(node.logs())) == 1  # the refusal of the first run, nothing since
            assert f"cluster.id={cid} started" in node.logs()
    finally:
        cluster.stop()


@pytest.mark.slow
def test_node_of_another_cluster_is_refused_loudly_on_both_sides(tmp_path: Path) -> None:
    cluster = KRaftCluster(tmp_path, 3)
    odd = suoi("storage", "random-uuid")[1].strip()
    cluster.nodes[3].overrides["cluster.id"] = odd
    for node in cluster.nodes.values():
        node.launch()
    try:
        for i in (1, 2):
            cluster.nodes[i].wait_ready()
        wait_until(lambda: all(cluster.broker_ids(i) == [1, 2] for i in (1, 2)), timeout=60,
                   message="nodes 1 and 2 registered")

        def mismatch_errors(i: int) -> list[str]:
            return [ln for ln in error_lines(cluster.nodes[i].logs()) if "INCONSISTENT_CLUSTER_ID" in ln]

        # The majority names both ids (node 3's requests carry its id); so does node 3.
        wait_until(lambda: any(CLUSTER_ID in ln and odd in ln for i in (1, 2) for ln in mismatch_errors(i)),
                   timeout=30, message="an ERROR naming both ids on node 1 or 2")
        wait_until(lambda: any(CLUSTER_ID in ln and odd in ln for ln in mismatch_errors(3)), timeout=30,
                   message="an ERROR naming both ids on node 3")
        assert all("suoi storage format" in ln for i in (1, 2, 3) for ln in mismatch_errors(i))
        # Rate-limited: one line per (logger, direction, peer) per minute, not one per request.
        for i in (1, 2, 3):
            keys = [MISMATCH_KEY.search(ln).groups() for ln in mismatch_errors(i)]  # type: ignore[union-attr]
            assert len(keys) == len(set(keys)), mismatch_errors(i)
        assert cluster.broker_ids(1) == [1, 2]  # node 3 never joins
        assert cluster.nodes[3].proc is not None and cluster.nodes[3].proc.poll() is None
    finally:
        cluster.stop()


def test_configured_cluster_id_disagreeing_with_meta_properties_is_refused(tmp_path: Path) -> None:
    cluster = KRaftCluster(tmp_path, 1)
    node = cluster.nodes[1]
    stored = suoi("storage", "random-uuid")[1].strip()
    assert suoi("storage", "format", "-t", stored, "-c", str(node_config(cluster, 1)), "-g")[0] == 1  # disagrees
    del node.overrides["cluster.id"]
    assert suoi("storage", "format", "-t", stored, "-c", str(node_config(cluster, 1)))[0] == 0
    node.overrides["cluster.id"] = CLUSTER_ID
    node.launch()
    try:
        assert node.proc is not None and node.proc.wait(30) == 1
        errors = error_lines(node.logs())
        assert len(errors) == 1 and stored in errors[0] and CLUSTER_ID in errors[0], node.logs()
    finally:
        node.stop()


def test_single_voter_formats_itself_with_one_info_line(tmp_path: Path) -> None:
    cluster = KRaftCluster(tmp_path, 1)
    node = cluster.nodes[1]
    del node.overrides["cluster.id"]
    try:
        cluster.start()
        meta = read_meta(node.log_dirs[0])
        assert meta is not None and UUID_RE.match(meta["cluster.id"])
        said = [ln for ln in node.logs().splitlines() if "its own quorum" in ln]
        assert len(said) == 1 and " INFO " in said[0] and meta["cluster.id"] in said[0]
        node.stop()
        node.start()  # formatted now: the same id, no new line
        assert read_meta(node.log_dirs[0]) == meta
        assert len([ln for ln in node.logs().splitlines() if "its own quorum" in ln]) == 1
    finally:
        cluster.stop()
