"""CRC32C implementations from PyPI on the buffer sizes the broker checks (issue 19).

suoi computes one CRC32C per batch produced (`record_batch.validate_batches`), per batch a
read or recovery checks for the first time (`log/batch_check.py`) and per LogAppendTime
rewrite, over a memoryview slice of the received or read bytes (attributes..end of batch).
This times each implementation that is installed, on the same slices, CPU µs per call (best of
``--repeat``), and checks that they agree with the one suoi uses (``crc32c``):

    pip install google-crc32c anycrc fastcrc   # whichever you want compared (not suoi's deps)
    python benchmarks/bench_crc32c.py

An implementation that takes only ``bytes`` is timed with the ``bytes(view)`` copy suoi would
have to make. A script, not a test.
"""

from __future__ import annotations

import argparse
import importlib
import os
import time
from collections.abc import Callable

SIZES = (170, 1024, 16 * 1024, 64 * 1024, 1 << 20)  # one small record .. a 1 MiB batch / scan chunk


def _candidates() -> list[tuple[str, Callable[[memoryview], int]]]:
    found: list[tuple[str, Callable[[memoryview], int]]] = []

    def version(module: str) -> str:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as v
        try:
            return v(module)
        except PackageNotFoundError:
            return "?"

    def add(package: str, label: str, make: Callable[[object], Callable[[memoryview], int]], module: str) -> None:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            return
        found.append((f"{package} {version(package)} {label}", make(mod)))

    add("crc32c", "crc32c(view) - suoi's", lambda m: m.crc32c, "crc32c")  # type: ignore[attr-defined]
    add("google-crc32c", "value(bytes(view))", lambda m: lambda b: m.value(bytes(b)), "google_crc32c")  # type: ignore[attr-defined]
    add("anycrc", 'Model("CRC32C").calc(view)', lambda m: m.Model("CRC32C").calc, "anycrc")  # type: ignore[attr-defined]
    add("fastcrc", "crc32.iscsi(view)", lambda m: importlib.import_module("fastcrc.crc32").iscsi, "fastcrc")
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    data = os.urandom(max(SIZES) + 21)
    views = {size: memoryview(data)[21:21 + size] for size in SIZES}  # offset like a batch's CRC range
    candidates = _candidates()
    if not candidates:
        raise SystemExit("no CRC32C package installed")
    reference = candidates[0][1] if candidates[0][0].startswith("crc32c ") else None
    print(f"CPU µs per call, best of {args.repeat}; bytes: " + " ".join(f"{s:>9}" for s in SIZES))
    for name, fn in candidates:
        agree = reference is None or all(fn(v) == reference(v) for v in views.values())
        cells = []
        for size, view in views.items():
            n = max(20, int(2e7 / size))
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.thread_time()
                for _ in range(n):
                    fn(view)
                best = min(best, (time.thread_time() - t0) / n * 1e6)
            cells.append(f"{best:9.3f}")
        print(f"  {name:50} " + " ".join(cells) + ("" if agree else "   DISAGREES with crc32c"))


if __name__ == "__main__":
    main()
