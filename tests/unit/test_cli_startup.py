"""What keeps `python -m suoi ...` quick to start: only the command's parser is built, and kio is
imported with hypothesis hidden (kio would otherwise register a strategy per type and build
hypothesis's unicode tables in a `.hypothesis` dir of the cwd: seconds in a fresh cwd)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from suoi.cli.main import COMMAND_MODULES, _command_parser, build_parser

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def test_every_command_has_its_module_and_a_parser_of_its_own() -> None:
    full = _subcommands(build_parser())
    assert len(full) == len(COMMAND_MODULES) == 25
    for name, command in full.items():
        alone = _subcommands(_command_parser([name, "--help"]))
        assert list(alone) == [name]
        assert alone[name].format_help() == command.format_help()


@pytest.mark.parametrize("argv", [[], ["--version"], ["no-such-command"], ["--help"]])
def test_other_command_lines_get_the_full_parser(argv: list[str]) -> None:
    assert list(_subcommands(_command_parser(argv))) == list(_subcommands(build_parser()))


def test_a_suoi_process_does_not_load_hypothesis(tmp_path: Path) -> None:
    """A command that loads kio (`suoi broker` refusing a config) still works, hypothesis stays unloaded and nothing is written
    to the cwd; hypothesis is importable again once the command returns."""
    (tmp_path / "server.properties").write_text("process.roles=broker\nnode.id=1\n")  # no voters: refused
    probe = ("import sys, runpy\n"
             "sys.argv = ['suoi', 'broker', '--config', 'server.properties']\n"
             "try:\n"
             "    runpy.run_module('suoi', run_name='__main__')\n"
             "except SystemExit as exc:\n"
             "    print('exit', exc.code)\n"
             "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'hypothesis' and sys.modules[m] is not None)\n"
             "import kio.static._phantom as phantom\n"
             "import hypothesis.strategies\n"
             "print(loaded, phantom.hypothesis is None)\n")
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["exit 2", "[] True"]
    assert "controller.quorum.voters" in done.stderr and "Traceback" not in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["server.properties"]  # no .hypothesis dir


def test_the_broker_process_freezes_its_imports_out_of_the_cyclic_gc() -> None:
    """`suoi broker` tunes the collector before it starts (GC was 60% of the CPU of a restart with
    10,000 partitions): import-time objects frozen, a larger young generation."""
    import gc

    from suoi.cli.broker import GC_GEN0_THRESHOLD, _tune_gc

    before = gc.get_threshold()
    try:
        _tune_gc()
        assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD > before[0]
        assert gc.get_freeze_count() > 0
        assert gc.isenabled()  # still collecting cycles, less often
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_the_broker_process_takes_the_gil_back_from_its_threads_sooner() -> None:
    """`suoi broker` shortens the GIL switch interval (Python's default 5 ms): the event loop waits
    at most that long behind one of the node's threads running Python (a /metrics encoding)."""
    from suoi.cli.broker import GIL_SWITCH_INTERVAL_S, _tune_gil

    before = sys.getswitchinterval()
    try:
        _tune_gil()
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL_S)
        assert before >= 5 * GIL_SWITCH_INTERVAL_S
    finally:
        sys.setswitchinterval(before)


def test_the_broker_process_freezes_what_a_topic_made_at_run_time_made(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`suoi broker` freezes again once a topic created at run time is applied: its partitions'
    objects are not walked by every later collection (a pause on the event loop)."""
    import asyncio
    import gc

    import suoi.cli.broker as cli_broker
    from suoi.testing import InProcessNode
    from tests.conftest import wait_until

    monkeypatch.setattr(cli_broker, "REFREEZE_CHECK_S", 0.05)
    node = InProcessNode(tmp_path)
    node.start()

    async def start() -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(cli_broker._refreeze_after_topic_changes(node.broker))

    async def cancel(task: asyncio.Task[None]) -> None:
        task.cancel()

    task = node.run(start())
    try:
        wait_until(gc.get_freeze_count, message="what start-up made frozen")
        gc.unfreeze()  # (the test process's objects back into the collector's generations)
        node.create_topic("made-at-run-time", partitions=4)

        def partitions_frozen() -> bool:
            leaders = node.broker.kraft.replicas.leaders
            partitions = [p for tp, p in list(leaders.items()) if tp.topic == "made-at-run-time"]
            if len(partitions) != 4:
                return False
            assert all(gc.is_tracked(p) for p in partitions)  # (objects the collector would walk)
            walked = {id(o) for o in gc.get_objects()}  # every object a collection walks: not the frozen
            return not any(id(p) in walked for p in partitions)

        wait_until(partitions_frozen, interval=0.2, message="the topic's partitions frozen")
    finally:
        node.run(cancel(task))
        gc.unfreeze()
        node.stop()
