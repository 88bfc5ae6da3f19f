"""The quorum of a node without process.roles: one voter, no address (port 0), no network.
It must lead and commit at once, never wait out an election timeout it cannot lose, and never
dial anyone (its `NodeClient` has no node registered)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from suoi.client import NodeClient
from suoi.cluster.settings import KRaftSettings
from suoi.config import load_config
from suoi.raft import RaftConfig
from suoi.raft_driver.driver import QuorumDriver


def test_a_node_without_process_roles_is_its_own_single_voter(tmp_path: Path) -> None:
    settings = KRaftSettings.from_config(load_config({}, {"log.dirs": str(tmp_path), "node.id": "7"}))
    assert settings.implicit and settings.is_broker and settings.is_controller
    assert settings.voters == {7: ("", 0)} and settings.metadata_dir == tmp_path


def test_voters_without_process_roles_are_refused(tmp_path: Path) -> None:
    config = load_config({}, {"log.dirs": str(tmp_path), "controller.quorum.voters": "1@127.0.0.1:9093"})
    try:
        KRaftSettings.from_config(config)
    except ValueError as exc:
        assert "process.roles" in str(exc)
    else:
        raise AssertionError("controller.quorum.voters without process.roles was accepted")


def test_the_only_voter_leads_and_commits_at_once_and_again_after_a_restart(tmp_path: Path) -> None:
    config = RaftConfig(election_timeout_ms=5000)  # waiting for it would take >= 5 s
    at_once = config.election_timeout_ms / 1000 / 2  # far below it, yet loose for a loaded machine

    async def run_once() -> tuple[float, int, int]:
        pool = NodeClient(client_id="one-voter")
        driver = QuorumDriver(1, {1: ("", 0)}, tmp_path, config=config, pool=pool, fsync=False)
        started = time.monotonic()
        await driver.start()
        try:
            while not driver.is_leader:
                await asyncio.sleep(0.001)
                assert time.monotonic() - started < at_once, f"no leader within {at_once} s"
            offset = await driver.append_and_wait([b"record"], timeout=at_once)
            return time.monotonic() - started, driver.leader_and_epoch.epoch, offset
        finally:
            await driver.stop()
            await pool.close()

    first, epoch, offset = asyncio.run(run_once())
    again, epoch_after, offset_after = asyncio.run(run_once())
    assert first < at_once and again < at_once, (first, again)  # far below the 5 s election timeout
    assert (epoch, offset) == (1, 1)  # its LeaderChange at 0, the record at 1
    assert (epoch_after, offset_after) == (2, 3)  # a new epoch's LeaderChange at 2, then the record
