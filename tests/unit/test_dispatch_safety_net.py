"""dispatch's safety net: a handler that raises answers that request with an error response of
its own (mirroring its topics/partitions), logs one line, and leaves the connection usable."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from kio.schema.describe_producers.v0.request import DescribeProducersRequest, TopicRequest
from kio.schema.describe_producers.v0.response import DescribeProducersResponse
from kio.schema.errors import ErrorCode

import suoi.broker  # noqa: F401  (registers every handler)
from suoi.api.dispatch import dispatch
from suoi.api.registry import REGISTRY
from suoi.http.admin import MetricsRecorder
from suoi.model import KafkaError
from suoi.protocol.codec import decode_response, encode_request

REQUEST = DescribeProducersRequest(topics=(TopicRequest(name="t", partition_indexes=(0, 1)),))


@pytest.fixture
def failing_handler(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install a DescribeProducers handler that raises what the test gives it."""
    def install(exc: Exception, awaitable: bool) -> None:
        async def later(ctx: Any, request: Any) -> Any:
            await asyncio.sleep(0)
            raise exc

        def now(ctx: Any, request: Any) -> Any:
            raise exc

        monkeypatch.setitem(REGISTRY, 61, dataclasses.replace(REGISTRY[61], handler=later if awaitable else now))

    return install


def answer(frame_parts: Any) -> DescribeProducersResponse:
    if not isinstance(frame_parts, list):
        frame_parts = asyncio.run(frame_parts)
    data = b"".join(frame_parts)[4:]
    return decode_response(data, DescribeProducersResponse)


@pytest.mark.parametrize("awaitable", [False, True])
@pytest.mark.parametrize("exc, code, level, traceback", [
    (TypeError("'NoneType' object is not iterable"), ErrorCode.unknown_server_error, logging.ERROR, True),
    (TimeoutError("not committed"), ErrorCode.request_timed_out, logging.WARNING, False),
    (KafkaError("no controller", ErrorCode.not_controller), ErrorCode.not_controller, logging.WARNING, False),
])
def test_a_failing_handler_gets_a_well_formed_error_response(
        failing_handler: Any, caplog: pytest.LogCaptureFixture, awaitable: bool, exc: Exception,
        code: ErrorCode, level: int, traceback: bool) -> None:
    failing_handler(exc, awaitable)
    frame = encode_request(77, "safety-net", REQUEST)[4:]
    node = SimpleNamespace(metrics=MetricsRecorder())  # dispatch needs only the node's metrics recorder here
    with caplog.at_level(logging.INFO, logger="suoi.api"):
        response = answer(dispatch(node, frame, "127.0.0.1:1"))  # type: ignore[arg-type]
    times = node.metrics.requests["DescribeProducers"]
    assert (times.count, times.errors, sum(times.total)) == (1, 1, 1)  # counted once, as failed
    assert [(t.name, [(p.partition_index, p.error_code) for p in t.partitions]) for t in response.topics] == [
        ("t", [(0, code), (1, code)])]
    records = [r for r in caplog.records if r.name == "suoi.api"]
    assert len(records) == 1 and records[0].levelno == level
    assert (records[0].exc_info is not None) == traceback
    assert "DescribeProducers v0 from 127.0.0.1:1" in records[0].getMessage()
