"""Seeded whole-quorum simulations (see raft_sim.py). Thousands of schedules run in CI.

* ``SUOI_RAFT_SEEDS=N`` runs N schedules per scenario (default: the counts below).
* ``SUOI_RAFT_SEED=S`` runs only seed S in every scenario — a failure message names its seed.
"""

from __future__ import annotations

import os

import pytest

from tests.sim.raft_sim import Scenario, SimulationFailure, run_schedule

SCENARIOS = {
    # name: (scenario, default seed count)
    "3-voters-prevote": (Scenario(voters=3, chaos_ms=2000), 2500),
    "3-voters-no-prevote": (Scenario(voters=3, pre_vote=False, chaos_ms=2000), 1200),
    "5-voters-observer": (Scenario(voters=5, observers=1, chaos_ms=2500), 1200),
    "5-voters-lossy-no-prevote": (Scenario(voters=5, pre_vote=False, drop=0.15, duplicate=0.1, chaos_ms=2000), 500),
    "1-voter-2-observers": (Scenario(voters=1, observers=2, chaos_ms=1500), 300),
}
CHUNKS = 4


def _seeds(name: str, chunk: int) -> range:
    only = os.environ.get("SUOI_RAFT_SEED")
    if only is not None:
        return range(int(only), int(only) + 1) if chunk == 0 else range(0)
    count = int(os.environ.get("SUOI_RAFT_SEEDS", SCENARIOS[name][1]))
    base = sum(ord(c) for c in name) * 1_000_003  # different seeds per scenario
    per = -(-count // CHUNKS)
    lo = chunk * per
    return range(base + lo, base + min(count, lo + per))


@pytest.mark.parametrize("chunk", range(CHUNKS))
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_simulated_quorum(name: str, chunk: int) -> None:
    scenario = SCENARIOS[name][0]
    failures: list[str] = []
    for seed in _seeds(name, chunk):
        try:
            run_schedule(seed, scenario)
        except SimulationFailure as exc:
            failures.append(str(exc))
            if len(failures) >= 3:
                break
    if failures:
        seeds = [f.split(":", 1)[0] for f in failures]
        pytest.fail(
            f"{name}: failing {seeds}; reproduce with SUOI_RAFT_SEED=<seed> "
            f"or run_schedule(<seed>, SCENARIOS[{name!r}][0])\n\n" + failures[0],
            pytrace=False,
        )


def test_schedules_are_deterministic() -> None:
    a = run_schedule(12345, Scenario(voters=5, observers=1))
    b = run_schedule(12345, Scenario(voters=5, observers=1))
    assert a == b
    assert a.elections >= 1 and a.committed > 0
