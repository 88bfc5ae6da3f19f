"""Opt-in native build of suoi's hot path with mypyc (issue 19); the default build is pure Python.

`pip install .` (and `make venv`, `make run`, `make test`) builds nothing here: ``ext_modules`` is
empty and the wheel is pure Python, as it was before this file existed. Only with ``SUOI_MYPYC=1``
in the environment are the modules of ``HOT_PATH`` compiled to C extensions by mypyc (which ships
with mypy, the project's type checker: black and mypy themselves ship compiled with it), e.g.
``make venv-compiled``. mypy is then a build dependency that pip's isolated build environment does
not hold, hence ``--no-build-isolation`` in a venv that has mypy (the Makefile target does this).

Each module is imported from its C extension instead of its ``.py`` (extensions come first on
import); the ``.py`` files are installed beside them. Which modules and why: benchmarks/README.md,
"The small-request path", fifth session. Code generated at run time with ``exec`` (the protocol's
compiled writers and bounds walkers) stays interpreted whatever this list holds.
"""

from __future__ import annotations

import os

from setuptools import setup

#: The request path of a Produce and a consumer Fetch, by cProfile of bench_small_path.py and
#: bench_produce_wire.py: framing, dispatch, the two handlers, the partition layer, the log's
#: append and read, the wake-up of a parked Fetch.
HOT_PATH = [
    "src/suoi/net/server.py",
    "src/suoi/protocol/framing.py",
    "src/suoi/api/dispatch.py",
    "src/suoi/api/produce.py",
    "src/suoi/api/fetch.py",
    "src/suoi/pending.py",
    "src/suoi/notify.py",
    "src/suoi/partition/partition.py",
    "src/suoi/partition/append.py",
    "src/suoi/partition/fetch.py",
    "src/suoi/partition/fetch_resolve.py",  # fetch.PartitionSource's base (Resolver)
    "src/suoi/partition/directory.py",
    "src/suoi/partition/replica_manager.py",  # subclasses directory.PartitionDirectory; get_partition
    "src/suoi/log/segment_state.py",  # LogSegment's bases: a native class needs native bases
    "src/suoi/log/segment_locate.py",
    "src/suoi/log/segment_recovery.py",
    "src/suoi/log/segment.py",
    "src/suoi/log/log_reads.py",
    "src/suoi/log/producer_state.py",
    "src/suoi/replication/partition_state.py",
]


#: The compiled build's own build directory (generated C, objects, extensions), emptied before each
#: compiled build by `make venv-compiled`: a module taken off HOT_PATH must not ship a stale extension.
BUILD_DIR = "build/mypyc"


def _compiled() -> dict:
    if os.environ.get("SUOI_MYPYC", "") not in ("1", "true", "yes"):
        return {}
    from mypyc.build import mypycify  # only in the opt-in build: mypy is not a build requirement

    opt_level = os.environ.get("SUOI_MYPYC_OPT", "3")
    return {"ext_modules": mypycify(HOT_PATH, opt_level=opt_level, target_dir=BUILD_DIR),
            "options": {"build": {"build_base": BUILD_DIR}}}


setup(**_compiled())
