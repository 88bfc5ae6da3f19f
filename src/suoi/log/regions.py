"""`Regions`: the sendfile regions of a Fetch answer with the open files behind them.

Its own module because it subclasses ``list``: ``log_reads`` is compiled by the opt-in mypyc
build (setup.py), and mypyc's native classes cannot inherit from ``list``; here it stays an
ordinary Python class whichever build is installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from suoi.log.handles import LazyFile


class Regions(list[tuple[int, int, int]]):
    """``(fd, position, length)`` file regions whose descriptors stay open until `release`
    (or the end of a ``with`` block): send them, then release."""

    def __init__(self, regions: Sequence[tuple[int, int, int]], files: Sequence[LazyFile]) -> None:
        super().__init__(regions)
        self._files = list(files)

    def release(self) -> None:
        for f in self._files:
            f.unpin()
        self._files.clear()

    def __enter__(self) -> Regions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

