"""Answers holding file regions, written to a plain TCP socket with ``os.sendfile``.

A Fetch answer may carry its records as `FileRegion`s of segment files
(``suoi.protocol.file_records``): copying them into Python memory (``pread``) and out again
(the socket write) was most of a consumer's broker CPU. asyncio's transports take only bytes,
so while such an answer is being sent this writer owns the socket's write side: it waits until
the transport's own buffer is empty (so what was written before goes first), then writes the
answer's bytes with ``os.writev`` and its regions with ``os.sendfile``, non-blocking. When the
socket is full it waits for writability on a duplicate of the socket's descriptor (the loop
refuses to watch a descriptor a transport owns), and every answer written meanwhile queues
behind, in order. When the queue is empty the transport writes again.

The connection (``net.server``) counts a busy writer as a full write buffer (it stops reading
requests, as for the transport's own back-pressure) and closes the connection on `on_error`: a
peer gone (EPIPE, ECONNRESET), or a region whose file was cut below it after it was read (the
answer's length prefix is already on the wire; as Kafka's ``FileRecords.writeTo``, the send
fails rather than sending bytes no check saw). Where ``sendfile`` is refused (EINVAL, ENOSYS:
a file system without it) the region is read and written as bytes, and so are all later ones
on this connection. TLS connections never get here: their regions are read into bytes
(`materialize`) and go through the TLS transport.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from suoi.protocol.file_records import FileRegion

#: errnos for which a file cannot be sent with ``sendfile`` (the copy path is used instead)
_NO_SENDFILE = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSOCK})
#: buffers per ``writev`` (well below IOV_MAX)
_IOV = 64


class SendStats:
    """Process-wide counts of region bytes sent (for tests and benchmarks)."""

    __slots__ = ("copied_bytes", "sendfile_bytes")

    def __init__(self) -> None:
        self.sendfile_bytes = 0  # sent by sendfile
        self.copied_bytes = 0  # read into memory and written (TLS, sendfile refused)


STATS = SendStats()


def materialize(parts: Sequence[Any]) -> list[Any]:
    """``parts`` with every `FileRegion` read into bytes (and released); ``EOFError`` if a
    region's file was cut before it (the copy path: TLS)."""
    out = []
    for p in parts:
        if p.__class__ is FileRegion:
            try:
                out.append(p.read())
            finally:
                p.release()
            STATS.copied_bytes += p.length
        else:
            out.append(p)
    return out


class FileSender:
    """The write side of one plain TCP connection while answers with file regions are sent."""

    def __init__(self, transport: Any, sock_fd: int, on_error: Callable[[str], None],
                 on_drained: Callable[[], None]) -> None:
        self._transport = transport
        self._fd = sock_fd
        self._on_error = on_error
        self._on_drained = on_drained
        self._loop = asyncio.get_running_loop()
        self._out: deque[Any] = deque()  # bytes-like parts and FileRegions, in order
        self._sent = 0  # bytes of the head part already sent
        self._watch_fd = -1  # dup of the socket, watched for writability
        self._watching = False
        self.sendfile = True

    @property
    def busy(self) -> bool:
        """Parts are queued: what the connection writes next must queue behind them."""
        return bool(self._out)

    def send(self, parts: Sequence[Any]) -> None:
        self._out.extend(parts)
        if not self._watching:
            self._pump()

    def close(self) -> None:
        """Stop: drop what is queued (releasing its files) and the duplicate descriptor."""
        self._unwatch()
        if self._watch_fd >= 0:
            fd, self._watch_fd = self._watch_fd, -1
            os.close(fd)
        for p in self._out:
            if p.__class__ is FileRegion:
                p.release()
        self._out.clear()

    def _pump(self) -> None:
        out = self._out
        if self._transport.is_closing():
            self.close()
            return
        if self._transport.get_write_buffer_size():
            self._watch()  # earlier answers are still in the transport's buffer: they go first
            return
        while out:
            head = out[0]
            if not (self._send_region(head) if head.__class__ is FileRegion else self._send_bytes()):
                return
        self._unwatch()
        self._on_drained()

    def _send_region(self, region: FileRegion) -> bool:
        """Send (more of) the head region; False when waiting or failed."""
        if not region.intact():
            self._fail(f"{region!r}: its file was cut below it after it was read")
            return False
        if not self.sendfile:
            return self._copy_head(region)
        try:
            n = os.sendfile(self._fd, region.fd, region.offset + self._sent, region.length - self._sent)
        except BlockingIOError:
            self._watch()
            return False
        except OSError as exc:
            if exc.errno in _NO_SENDFILE:
                self.sendfile = False
                return self._copy_head(region)
            self._fail(f"sending a file region failed: {exc.strerror or exc}")
            return False
        if n == 0:
            self._fail(f"{region!r}: the file ends early (cut after it was read)")
            return False
        self._sent += n
        STATS.sendfile_bytes += n
        if self._sent < region.length:
            self._watch()  # the socket took part of it: it is full
            return False
        self._out.popleft()
        self._sent = 0
        region.release()
        return True

    def _copy_head(self, region: FileRegion) -> bool:
        """The copy path for the head region: its unsent rest as bytes."""
        try:
            data = region.read()[self._sent:]
        except (EOFError, OSError) as exc:
            self._fail(str(exc))
            return False
        region.release()
        STATS.copied_bytes += len(data)
        self._out[0] = data
        self._sent = 0
        return True

    def _send_bytes(self) -> bool:
        """``writev`` the bytes parts at the head of the queue; False when waiting or failed."""
        out = self._out
        bufs: list[Any] = []
        for p in out:
            if p.__class__ is FileRegion or len(bufs) == _IOV:
                break
            bufs.append(p)
        if self._sent:
            bufs[0] = memoryview(bufs[0])[self._sent:]
        try:
            n = os.writev(self._fd, bufs)
        except BlockingIOError:
            self._watch()
            return False
        except OSError as exc:
            self._fail(f"write failed: {exc.strerror or exc}")
            return False
        wanted = sum(len(b) for b in bufs)
        done, self._sent = n + self._sent, 0
        while done:
            left = len(out[0])
            if done < left:
                self._sent = done
                break
            done -= left
            out.popleft()
        if n < wanted:
            self._watch()  # the socket is full
            return False
        return True

    def _watch(self) -> None:
        if not self._watching:
            if self._watch_fd < 0:
                self._watch_fd = os.dup(self._fd)
            self._loop.add_writer(self._watch_fd, self._pump)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._watching = False
            self._loop.remove_writer(self._watch_fd)

    def _fail(self, reason: str) -> None:
        self.close()
        self._on_error(reason)
