"""Answers holding file regions on a real socket (`suoi.net.file_send.FileSender`): sent in
order with the bytes around them and with answers queued behind them while the peer does not
read, from a file that was closed and unlinked meanwhile; a file cut below a queued region
closes the connection instead of sending what no check saw. Real files, a real socket pair,
uvloop as the broker runs."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest
import uvloop

from suoi.log.handles import FileHandles, LazyFile
from suoi.net.file_send import FileSender
from suoi.protocol.file_records import FileRegion

DATA = bytes(range(256)) * 4096  # 1 MiB, more than the socket buffers hold
EARLIER = b"earlier answer|" + b"e" * 200_000 + b"|"


def _file(tmp_path: Path) -> LazyFile:
    f = LazyFile(tmp_path / "00000000000000000000.log", os.O_RDWR | os.O_CREAT | os.O_APPEND, FileHandles())
    os.write(f.fd, DATA)
    return f


def _region(f: LazyFile, offset: int, length: int) -> FileRegion:
    return FileRegion(f.pin(), offset, length, f, f.cuts)


async def _exchange(tmp_path: Path, *, sendfile: bool, unlink: bool = False, cut: int | None = None
                    ) -> tuple[bytes, list[str], bool]:
    """Queue bytes, a region, more bytes, a second answer (a region, then bytes written while the
    first are still queued) on a socket whose peer reads only afterwards; what the peer got,
    the errors, and whether the sender went idle."""
    loop = asyncio.get_running_loop()
    ours, peer = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    peer.setblocking(False)
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    errors: list[str] = []
    drained = asyncio.Event()
    sender = FileSender(transport, transport.get_extra_info("socket").fileno(), errors.append, drained.set)
    sender.sendfile = sendfile
    f = _file(tmp_path)
    transport.write(EARLIER)  # more than the socket takes: the transport buffers the rest, sent first
    sender.send([b"head|", _region(f, 1000, 500_000), b"|tail"])
    assert sender.busy  # 500 kB do not fit the socket: the rest waits for the peer
    sender.send([b"|second|", _region(f, 600_000, 300_000), b"|end"])
    if unlink:  # retention deletes the segment while its regions are queued
        f.close()
        os.unlink(f.path)
    if cut is not None:
        f.truncate(cut)
    got = bytearray()
    deadline = loop.time() + 20
    while not drained.is_set() and not errors and loop.time() < deadline:
        try:
            got += await loop.sock_recv(peer, 1 << 16)
        except OSError:
            break
        if not got:
            break
    try:
        while True:
            chunk = peer.recv(1 << 16)
            if not chunk:
                break
            got += chunk
    except (BlockingIOError, OSError):
        pass
    sender.close()
    transport.abort()
    peer.close()
    return bytes(got), errors, drained.is_set()


EXPECTED = (EARLIER + b"head|" + DATA[1000:501_000] + b"|tail|second|" + DATA[600_000:900_000] + b"|end")


@pytest.mark.parametrize("sendfile", [True, False], ids=["sendfile", "copy"])  # copy: where sendfile is refused
def test_regions_go_in_order_with_the_bytes_around_them(tmp_path: Path, sendfile: bool) -> None:
    got, errors, drained = uvloop.run(_exchange(tmp_path, sendfile=sendfile))
    assert errors == [] and drained
    assert got == EXPECTED


def test_a_segment_deleted_while_its_regions_are_queued_is_still_sent_whole(tmp_path: Path) -> None:
    got, errors, drained = uvloop.run(_exchange(tmp_path, sendfile=True, unlink=True))
    assert errors == [] and drained
    assert got == EXPECTED


def test_a_file_cut_below_a_queued_region_closes_instead_of_sending_it(tmp_path: Path) -> None:
    got, errors, drained = uvloop.run(_exchange(tmp_path, sendfile=True, cut=700_000))
    assert len(errors) == 1 and "cut" in errors[0]
    assert not drained
    # what went out is a prefix of the answers, and nothing of the cut region (file bytes 600,000+)
    assert EXPECTED.startswith(got)
    assert len(got) <= EXPECTED.index(b"|second|") + len(b"|second|")
    assert len(got) >= len(EARLIER)


def test_a_closed_file_keeps_its_descriptor_until_the_last_region_is_released(tmp_path: Path) -> None:
    f = _file(tmp_path)
    region = _region(f, 10, 20)
    f.close()
    assert f.closed and f.is_open  # pinned: the descriptor stays for the send
    assert region.read() == DATA[10:30]
    region.release()
    assert not f.is_open and f.pins == 0
    region.release()  # idempotent: the pin count does not go below zero for someone else's pin
    assert f.pins == 0 and not region.intact()
