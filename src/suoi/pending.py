"""An answer that is not there yet, handed on by plain callbacks: no Task, no loop hop per layer.

A long-poll Fetch that must wait used to be a Task running three nested coroutines (the
partition layer's long-poll, the handler's answer, dispatch's encode), whose wake-up took two
loop hops (the Task's step, then the connection's done callback). Each layer of the request
path instead adds a synchronous step (`then`) to one `Pending`, and the connection sets the
`sink` that writes the answer: whoever resolves it (a wake-up scheduled by the partition
layer, or its max-wait timer) runs re-read, answer, encode and write in one callback.

`cancel` is the consumer going away (the connection closed): the producer's `_cancelled`
hook releases what it holds (a parked fetch leaves the notifier's tables and drops its timer).
Awaiting a `Pending` (the envelope and local-controller paths, tests) goes through a future.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
U = TypeVar("U")

#: called once with (value, None) or (None, the exception no step turned into a value)
Sink = Callable[[Any, BaseException | None], None]


def _apply(step: Callable[[Any], Any], on_error: Callable[[Exception], Any] | None, value: Any,
           exc: BaseException | None) -> tuple[Any, BaseException | None]:
    try:
        if exc is None:
            return step(value), None
        if on_error is not None and isinstance(exc, Exception):
            return on_error(exc), None
    except Exception as raised:
        return None, raised
    return value, exc


class Pending(Generic[T]):
    """A value delivered later, once, through synchronous steps to one sink (module doc)."""

    __slots__ = ("_outcome", "_sink", "_steps", "done")

    def __init__(self) -> None:
        self._steps: list[tuple[Callable[[Any], Any], Callable[[Exception], Any] | None]] = []
        self._sink: Sink | None = None
        self._outcome: tuple[Any, BaseException | None] | None = None  # resolved before a sink was set
        #: resolved, failed or cancelled: nothing more happens
        self.done = False

    def then(self, step: Callable[[T], U], on_error: Callable[[Exception], U] | None = None) -> Pending[U]:
        """Turn the value with `step` when it comes (an exception raised by an earlier step goes
        to `on_error`, or on to the sink). Same object, next type: layers chain without a hop."""
        if self._outcome is not None:  # resolved already (before anyone took it): step now
            self._outcome = _apply(step, on_error, *self._outcome)
        else:
            self._steps.append((step, on_error))
        return self  # type: ignore[return-value]

    def sink(self, sink: Sink) -> None:
        """The one consumer of the final value (the connection's order book)."""
        self._sink = sink
        if self._outcome is not None:
            value, exc = self._outcome
            self._outcome = None
            sink(value, exc)

    def resolve(self, value: T) -> None:
        self._run(value, None)

    def fail(self, exc: Exception) -> None:
        self._run(None, exc)

    def _run(self, value: Any, exc: BaseException | None) -> None:
        if self.done:
            return
        self.done = True
        for step, on_error in self._steps:
            if exc is None:  # the usual case inline (`_apply` would cost a call per layer)
                try:
                    value = step(value)
                except Exception as raised:
                    value, exc = None, raised
            else:
                value, exc = _apply(step, on_error, value, exc)
        self._steps = []
        sink = self._sink
        if sink is None:
            self._outcome = (value, exc)
        else:
            sink(value, exc)

    def cancel(self) -> None:
        """The consumer is gone: nothing is delivered, the producer lets go (`_cancelled`)."""
        if not self.done:
            self.done = True
            self._cancelled()

    def _cancelled(self) -> None:
        """Release what the producer holds for this value (a subclass's hook)."""

    def __await__(self) -> Generator[Any, None, T]:
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()

        def deliver(value: Any, exc: BaseException | None) -> None:
            if fut.done():
                return
            if exc is None:
                fut.set_result(value)
            else:
                fut.set_exception(exc)

        def abandoned(f: asyncio.Future[T]) -> None:
            if f.cancelled():
                self.cancel()

        fut.add_done_callback(abandoned)
        self.sink(deliver)
        return fut.__await__()
