"""The issue-19 scorecard's table logic (benchmarks/scorecard_table.py, pure): medians and spreads
per column, the ratios, and the met column for at-most, at-least and versus-Tansu goals."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "scorecard_table.py"
_spec = importlib.util.spec_from_file_location("scorecard_table", _PATH)
assert _spec is not None and _spec.loader is not None
sc = importlib.util.module_from_spec(_spec)
sys.modules["scorecard_table"] = sc  # dataclasses look their module up by name
_spec.loader.exec_module(sc)

AT_MOST = sc.Goal("us", "broker µs/msg", "produce", "bench_x.py", "<=", 2.0)
AT_LEAST_TANSU = sc.Goal("msgs", "consume msg/s", "consume", "bench_y.py", ">=", 1.0, vs_tansu=True)
SHOWN = sc.Goal("rss", "RSS MB", "soak", "bench_z.py")


def test_the_last_tree_is_judged_on_its_median_with_the_ratio_to_the_first() -> None:
    figures = {"before": [2.6, 3.7, 2.1], "after": [1.5, 2.5, 1.9]}
    row = sc.evaluate(AT_MOST, figures, ["before", "after"], tansu=False)
    assert row.cells == ("2.60 (2.10-3.70)", "1.90 (1.50-2.50)")
    assert row.ratio == 1.9 / 2.6
    assert row.vs_tansu is None
    assert row.met == "yes"
    worse = sc.evaluate(AT_MOST, {"before": [1.0], "after": [2.01]}, ["before", "after"], tansu=False)
    assert (worse.cells, worse.met) == (("1.00", "2.01"), "no")
    on_the_line = sc.evaluate(AT_MOST, {"this": [2.0]}, ["this"], tansu=False)
    assert (on_the_line.met, on_the_line.ratio) == ("yes", None)


def test_a_versus_tansu_goal_is_judged_on_the_ratio_to_tansu() -> None:
    figures = {"this": [500_000.0, 560_000.0], sc.TANSU: [400_000.0, 600_000.0]}
    row = sc.evaluate(AT_LEAST_TANSU, figures, ["this"], tansu=True)
    assert row.cells == ("530,000 (500,000-560,000)", "500,000 (400,000-600,000)")
    assert row.vs_tansu == 530_000 / 500_000
    assert row.met == "yes"
    behind = sc.evaluate(AT_LEAST_TANSU, {"this": [99.0], sc.TANSU: [100.0]}, ["this"], tansu=True)
    assert behind.met == "no"
    # Without Tansu measured there is nothing to judge on.
    alone = sc.evaluate(AT_LEAST_TANSU, {"this": [99.0]}, ["this"], tansu=False)
    assert (alone.met, alone.vs_tansu) == ("-", None)


def test_missing_figures_and_unjudged_goals() -> None:
    missing = sc.evaluate(AT_MOST, {"before": [1.0]}, ["before", "after"], tansu=True)
    assert (missing.cells, missing.ratio, missing.vs_tansu, missing.met) == (("1.00", "-", "-"), None, None, "-")
    shown = sc.evaluate(SHOWN, {"this": [61.3]}, ["this"], tansu=False)
    assert (shown.cells, shown.met) == (("61.3",), "")


def test_shown_only_rows_without_figures_are_left_out_judged_ones_never() -> None:
    figures = {"rss": {}, "us": {}}
    assert [r.goal.key for r in sc.rows([AT_MOST, SHOWN], figures, ["this"], tansu=False)] == ["us"]
    figures = {"rss": {"this": [50.0]}}
    assert [r.goal.key for r in sc.rows([AT_MOST, SHOWN], figures, ["this"], tansu=False)] == ["us", "rss"]


def test_table_columns_thresholds_and_markdown() -> None:
    figures = {"us": {"before": [3.0], "after": [1.5], sc.TANSU: [3.0]},
               "msgs": {"before": [90.0], "after": [120.0], sc.TANSU: [100.0]}}
    rows = sc.rows([AT_MOST, AT_LEAST_TANSU], figures, ["before", "after"], tansu=True)
    lines = sc.table(rows, ["before", "after"], tansu=True)
    assert lines == [
        ["target", "threshold", "before", "after", "Tansu", "after/before", "after/Tansu", "met"],
        ["broker µs/msg", "≤ 2.00", "3.00", "1.50", "3.00", "0.50x", "0.50x", "yes"],
        ["consume msg/s", "≥ 1.00x Tansu", "90.0", "120", "100", "1.33x", "1.20x", "yes"],
    ]
    md = sc.render_markdown(lines).splitlines()
    assert md[0] == "| target | threshold | before | after | Tansu | after/before | after/Tansu | met |"
    assert md[1] == "| --- | --- | --- | --- | --- | --- | --- | --- |"
    assert md[2] == "| broker µs/msg | ≤ 2.00 | 3.00 | 1.50 | 3.00 | 0.50x | 0.50x | yes |"
    text = sc.render_text(lines).splitlines()
    assert len(text) == 4 and text[0].startswith("target") and text[3].endswith("yes")


def test_every_goal_names_a_known_section_and_a_valid_threshold() -> None:
    keys = [g.key for g in sc.GOALS]
    assert len(keys) == len(set(keys))
    assert sc.SECTIONS == ("produce", "consume", "latency", "replication", "soak")
    for g in sc.GOALS:
        assert (g.op is None) == (g.limit is None), g.key
        assert g.op in (None, "<=", ">="), g.key
        assert g.source.startswith("bench"), g.key
