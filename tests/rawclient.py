"""A minimal synchronous Kafka client for protocol-level tests (bad input, exact codes).

Requests are encoded with kio, so tests speak exactly the bytes a real client would,
and can also send hand-broken frames.
"""

from __future__ import annotations

import io
import socket
import struct
from typing import Any

from kio.index import load_response_schema
from kio.serial import entity_reader, entity_writer


class RawClient:
    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.correlation_id = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def encode(self, request: Any, correlation_id: int | None = None, client_id: str = "raw-test") -> bytes:
        if correlation_id is None:
            self.correlation_id += 1
            correlation_id = self.correlation_id
        header_cls = type(request).__header_schema__
        buf = io.BytesIO()
        entity_writer(header_cls)(buf, header_cls(
            request_api_key=request.__api_key__, request_api_version=request.__version__,
            correlation_id=correlation_id, client_id=client_id))
        entity_writer(type(request))(buf, request)
        body = buf.getvalue()
        return struct.pack(">i", len(body)) + body

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_frame(self) -> bytes:
        size = struct.unpack(">i", self._recv_exact(4))[0]
        return self._recv_exact(size)

    def _recv_exact(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = self.sock.recv(n)
            if not chunk:
                raise ConnectionError("connection closed by broker")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def decode(self, request: Any, frame: bytes) -> tuple[int, Any]:
        cls = load_response_schema(request.__api_key__, request.__version__)
        header, used = entity_reader(cls.__header_schema__)(frame, 0)
        body, _ = entity_reader(cls)(frame, used)
        return header.correlation_id, body

    def request(self, request: Any) -> Any:
        self.send_bytes(self.encode(request))
        correlation_id, body = self.decode(request, self.recv_frame())
        assert correlation_id == self.correlation_id
        return body

    def is_closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True once the broker closes the connection (recv returns EOF or reset)."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
