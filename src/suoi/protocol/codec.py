"""Request/response (de)serialisation through kio, plus version-agnostic building.

kio generates one frozen dataclass per (API, version). Handlers stay version-agnostic by
describing a response as plain dicts/lists; `build()` turns that into the class of the
version the client asked for, dropping fields that version lacks and converting plain
ints to the few richer types kio uses (ErrorCode, timedelta, datetime). This is the only
place that knows those details.

The names every other module imports, from the modules that hold them: `codec_requests`
(requests in: prefix, decoders, errors), `codec_responses` (responses out: `GatherBuffer`,
`encode_response`), `codec_client` (requests out, responses in), `codec_build` (version-agnostic
building), `codec_views` (records fields as views of the frame).
"""

from __future__ import annotations

from suoi.protocol.codec_build import build, build_response, ms, response_class
from suoi.protocol.codec_client import decode_response, decode_response_views, encode_request, response_correlation_id
from suoi.protocol.codec_requests import (
    API_VERSIONS_KEY,
    VIEWS_FROM,
    DecodeError,
    Request,
    RequestPrefix,
    UnsupportedApi,
    decode_request,
    read_prefix,
    request_decoder,
)
from suoi.protocol.codec_responses import GatherBuffer, encode_raw, encode_response, framed
from suoi.protocol.codec_views import views_setter

__all__ = [
    "API_VERSIONS_KEY",
    "VIEWS_FROM",
    "DecodeError",
    "GatherBuffer",
    "Request",
    "RequestPrefix",
    "UnsupportedApi",
    "build",
    "build_response",
    "decode_request",
    "decode_response",
    "decode_response_views",
    "encode_raw",
    "encode_request",
    "encode_response",
    "framed",
    "ms",
    "read_prefix",
    "request_decoder",
    "response_class",
    "response_correlation_id",
    "views_setter",
]
