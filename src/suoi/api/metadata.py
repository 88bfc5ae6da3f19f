"""Metadata (key 3): brokers, and each topic's partitions with leader and replicas.

Unknown topics are auto-created when the client allows it and
auto.create.topics.enable is set, so a tutorial's first `send()` to a new topic works.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Any

from suoi.api.cluster_metadata import after_auto_creation, metadata_response
from suoi.api.registry import RequestContext, api
from suoi.protocol.splice import SplicedResponse


@api(3, "Metadata", 0, 13)
def handle_metadata(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.services
    # With ACLs on, topics are filtered and annotated per principal (`api.enforcement`): plain
    # dicts. Otherwise every client gets the same bytes per topic (`metadata_cache`).
    plain = getattr(broker, "authorizer", None) is not None
    # answered at once, or once the topics it starts auto-creating exist
    first = metadata_response(broker, request, ctx.api_version, encoded=not plain)
    answer = after_auto_creation(broker, request, ctx.api_version, first)
    return answer if plain else spliced(answer)


def spliced(answer: dict[str, Any] | Awaitable[dict[str, Any]]) -> SplicedResponse | Awaitable[SplicedResponse]:
    """The KRaft answer, whose "topics" holds encoded topics (`metadata_cache`), for dispatch."""
    if not inspect.isawaitable(answer):
        return SplicedResponse(answer, "topics")

    async def later() -> SplicedResponse:
        return SplicedResponse(await answer, "topics")

    return later()
