"""ImageWaiters: an answer that waits for the metadata image resolves once the image shows the
change, against the published or the applied image as it asked, and gives up at its deadline."""

from __future__ import annotations

import asyncio
import uuid

from suoi.cluster.image_waiters import ImageWaiters
from suoi.controller.image import MetadataBuilder, MetadataImage
from suoi.controller.records import Topic


def _with_topic(name: str) -> MetadataImage:
    builder = MetadataBuilder()
    builder.apply_batch([Topic(name=name, topic_id=uuid.uuid4())], 0, 1)
    return builder.image()


def has_orders(image: MetadataImage) -> bool:
    return image.topic("orders") is not None


def test_a_waiter_resolves_on_the_image_it_asked_for_and_only_then() -> None:
    async def scenario() -> tuple[bool, bool, bool, int]:
        published = applied = MetadataBuilder().image()
        waiters = ImageWaiters(lambda want_applied: applied if want_applied else published)
        on_published = asyncio.ensure_future(waiters.wait(has_orders, 5.0))
        on_applied = asyncio.ensure_future(waiters.wait(has_orders, 5.0, applied=True))
        await asyncio.sleep(0)
        waiters.wake()  # nothing changed yet
        await asyncio.sleep(0)
        pending_before = sum(not f.done() for f in (on_published, on_applied))
        published = _with_topic("orders")
        waiters.wake()
        first = await asyncio.wait_for(on_published, 1.0)
        still_waiting = not on_applied.done()
        applied = published
        waiters.wake()
        second = await asyncio.wait_for(on_applied, 1.0)
        return first, still_waiting, second, pending_before

    first, applied_still_waiting, second, pending_before = asyncio.run(scenario())
    assert pending_before == 2
    assert first is True and applied_still_waiting and second is True


def test_a_condition_already_true_answers_at_once_and_a_false_one_times_out() -> None:
    async def scenario() -> tuple[bool, bool, int]:
        image = _with_topic("orders")
        waiters = ImageWaiters(lambda _applied: image)
        at_once = await waiters.wait(has_orders, 0.0)
        timed_out = await waiters.wait(lambda i: i.topic("payments") is not None, 0.05)
        return at_once, timed_out, len(waiters._waiters)

    at_once, timed_out, left = asyncio.run(scenario())
    assert at_once is True
    assert timed_out is False
    assert left == 0  # a waiter that gave up is no longer checked
