"""bench_latency --probe's split of each message's latency (benchmarks/latency_breakdown.py, pure):
the consumer's (partition, offset, produce ns, arrival ns) joined with the broker's stamps."""

from __future__ import annotations

import importlib.util
import sys
from array import array
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "latency_breakdown.py"
_spec = importlib.util.spec_from_file_location("latency_breakdown", _PATH)
assert _spec is not None and _spec.loader is not None
lb = importlib.util.module_from_spec(_spec)
sys.modules["latency_breakdown"] = lb
_spec.loader.exec_module(lb)

MS = 1_000_000


def _dump() -> dict:
    return {
        "started_ns": 0, "ended_ns": 1_000 * MS, "busy_cpu_ns": 100 * MS,
        # partition, base offset, count, read ns, append ns, loop busy since ns
        "appends": [0, 0, 2, 10 * MS, 11 * MS, 9 * MS,
                    1, 5, 1, 20 * MS, 20 * MS + MS // 2, 20 * MS],
        # partition, fetch offset, high watermark, ns, parked re-read?, its request's read ns, loop busy since
        "reads": [0, 0, 2, 13 * MS, 1, 0, 0,
                  1, 5, 6, 25 * MS, 0, 24 * MS, 23 * MS,
                  1, 6, 9, 40 * MS, 0, 39 * MS, 39 * MS],  # a later read of partition 1 (not the first past offset 5)
        "slow": [["KafkaConnection.data_received", 19 * MS, 3 * MS, 2 * MS, 4096],
                 ["QuorumDriver._tick", 500 * MS, 1 * MS, MS // 2]],
        "gcs": [[0, 12 * MS, MS, MS, 10], [2, 900 * MS, 5 * MS, 5 * MS, 0]],
        "scrapes": [[15 * MS, 18 * MS], [950 * MS, 960 * MS]],
    }


def _stamps(*rows: tuple[int, int, int, int]) -> array:
    out = array("q")
    for row in rows:
        out.extend(row)
    return out


def test_each_part_is_measured_between_the_right_stamps() -> None:
    stamps = _stamps((0, 0, 8 * MS, 15 * MS), (0, 1, 9 * MS, 15 * MS), (1, 5, 18 * MS, 27 * MS),
                     (2, 0, 1 * MS, 2 * MS))  # partition 2: never stamped by the broker, left out
    rows = lb.join(stamps, _dump())
    assert len(rows) == 3
    parts = dict(zip(("e2e", *lb.PARTS), rows[0][:9], strict=True))
    # produced at 8, the loop busy since 9 when it read at 10: at most 1 ms in the socket
    assert parts == pytest.approx({"e2e": 7, "producer": 1, "loop_busy": 1, "broker_in": 1, "fetch_wake": 2,
                                   "no_fetch": 0, "fetch_busy": 0, "fetch_read": 0, "consumer": 2})
    assert rows[1][2] == pytest.approx(1)  # produced at 9: loop_busy is capped by what it waited in all
    assert rows[1][1] == pytest.approx(0)
    # no Fetch parked: appended at 20.5, the next Fetch read at 24 (the loop busy since 23), the record at 25
    parts = dict(zip(("e2e", *lb.PARTS), rows[2][:9], strict=True))
    assert parts == pytest.approx({"e2e": 9, "producer": 2, "loop_busy": 0, "broker_in": 0.5, "fetch_wake": 0,
                                   "no_fetch": 2.5, "fetch_busy": 1, "fetch_read": 1, "consumer": 2})
    assert rows[2][9:] == (18 * MS, 27 * MS)


def test_the_figures_split_the_tail_and_count_only_what_ran_in_the_window() -> None:
    stamps = _stamps((0, 0, 8 * MS, 15 * MS), (0, 1, 9 * MS, 15 * MS), (1, 5, 18 * MS, 27 * MS))
    out = lb.breakdown(stamps, _dump())
    assert out["probe joined"] == 3
    assert out["probe producer p50 ms"] == pytest.approx(1)
    assert out["probe no_fetch tail mean ms"] == pytest.approx(2.5)  # the slowest 1 %: the 9 ms message
    broker_ms = 1 + 1 + 2 + (1 + 1 + 2) + (0.5 + 1 + 1)  # loop_busy, broker_in, fetch_wake, fetch_busy, fetch_read
    assert out["probe broker share of all latency %"] == pytest.approx(broker_ms / (7 + 6 + 9) * 100)
    assert out["probe broker share of the tail %"] == pytest.approx(2.5 / 9 * 100)
    assert out["probe tail msgs near a >= 1 ms CPU callback %"] == 100  # the 2 ms read at 19-22 ms
    assert out["probe loop busy CPU %"] == pytest.approx(10)
    # the window is 8-27 ms: the tick at 500 ms, the collection at 900 ms and the late scrape are outside
    assert out["probe callbacks >= 1 ms CPU"] == 1
    assert out["probe slow callbacks (name: count, max CPU ms)"] == "KafkaConnection.data_received: 1, 2.0"
    assert out["probe GC collections by generation"] == "1/0/0"
    assert out["probe /metrics scrapes in the window"] == 1


def test_without_a_window_every_stall_counts() -> None:
    out = lb.stalls(_dump())
    assert out["probe GC collections by generation"] == "1/0/1"
    assert out["probe GC max CPU ms"] == 5
    assert out["probe callbacks >= 5 ms wall"] == 0
    assert out["probe longest callback CPU ms"] == 2
    assert out["probe /metrics scrapes in the window"] == 2
