"""`suoi broker`'s glibc malloc settings (`suoi.cli.malloc_tuning`): request-sized buffers come
from the already-mapped heap instead of fresh mmap'd pages (issue 19)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")

#: Allocates a 2 MiB bytes object (a large Produce's size) and says whether it sits in the
#: brk heap ("[heap]" in /proc/self/maps) or in a mapping of its own.
_PROBE = """
import sys
from suoi.cli.malloc_tuning import tune_malloc
applied = tune_malloc() if sys.argv[1] == "tune" else None
block = bytes(2 * 1024 * 1024)
address = id(block)
for line in open("/proc/self/maps"):
    span, *rest = line.split()
    low, high = (int(x, 16) for x in span.split("-"))
    if low <= address < high:
        print(applied, rest[-1] if len(rest) >= 5 else "anonymous")
"""


def _probe(mode: str, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], env={**clean, **env}, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_large_blocks_come_from_the_heap_once_tuned() -> None:
    assert _probe("plain") == ["None", "anonymous"]  # glibc's default: a mapping of its own
    assert _probe("tune") == ["True", "[heap]"]


def test_an_operators_own_malloc_variables_are_kept() -> None:
    assert _probe("tune", MALLOC_TOP_PAD_="131072") == ["False", "anonymous"]
