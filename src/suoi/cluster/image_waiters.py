"""Requests waiting for this node's metadata image to satisfy a condition.

A request that changed metadata (CreateTopics, a forwarded AlterConfigs, an auto-creation)
answers only once this node's image shows the change, so the client's next request to this node
sees it (Kafka's broker waits for its image to reach the controller's offset the same way). Kept
apart from the KRaft runtime because it is a small, self-contained wake-up list: the runtime only
says *when* an image changed (`wake`), the waiters decide whether their condition now holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from suoi.controller.image import MetadataImage

__all__ = ["ImageWaiters"]

Condition = Callable[[MetadataImage], bool]


class ImageWaiters:
    """``image_of(applied)`` is the image a waiter is checked against: the published image, or
    (``applied``) the one the local partitions have been brought to."""

    def __init__(self, image_of: Callable[[bool], MetadataImage]) -> None:
        self._image_of = image_of
        self._waiters: list[tuple[Condition, asyncio.Future[None], bool]] = []

    async def wait(self, condition: Condition, timeout: float, *, applied: bool = False) -> bool:
        """Until ``condition`` holds (False after ``timeout`` s)."""
        if condition(self._image_of(applied)):
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (condition, fut, applied)
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def wake(self) -> None:
        """An image changed (or an auto-creation ended): resolve the waiters whose condition holds."""
        for condition, fut, applied in self._waiters:
            if not fut.done() and condition(self._image_of(applied)):
                fut.set_result(None)
