"""The follower's side of a KIP-227 session (suoi.replication.fetch_session_handler): what each
request names and how answers and errors move the session id and epoch."""

from __future__ import annotations

from suoi.replication.fetch_session_handler import FETCH_SESSION_ID_NOT_FOUND, FetchSessionHandler

INVALID_FETCH_SESSION_EPOCH = 71


def test_full_then_incremental_then_only_changes() -> None:
    h = FetchSessionHandler()
    first = h.build({"a": (0, 1), "b": (0, 1)})
    assert (first.session_id, first.epoch, first.full, first.to_send) == (0, 0, True, {"a": (0, 1), "b": (0, 1)})
    assert h.on_response(0, 42)
    quiet = h.build({"a": (0, 1), "b": (0, 1)})
    assert (quiet.session_id, quiet.epoch, quiet.full, quiet.to_send, quiet.forgotten) == (42, 1, False, {}, [])
    assert h.on_response(0, 42)
    moved = h.build({"a": (5, 1), "c": (0, 1)})  # a fetched records, b stopped, c added
    assert (moved.epoch, moved.to_send, moved.forgotten) == (2, {"a": (5, 1), "c": (0, 1)}, ["b"])


def test_session_errors_and_lost_connections_start_over() -> None:
    h = FetchSessionHandler()
    h.build({"a": (0, 1)})
    h.on_response(0, 42)
    h.build({"a": (0, 1)})
    assert not h.on_response(INVALID_FETCH_SESSION_EPOCH, 0)
    again = h.build({"a": (0, 1)})  # closes 42 and asks for a new session, in full
    assert (again.session_id, again.epoch, again.full, again.to_send) == (42, 0, True, {"a": (0, 1)})
    assert not h.on_response(FETCH_SESSION_ID_NOT_FOUND, 0)
    assert (h.build({"a": (0, 1)}).session_id, h.epoch) == (0, 0)
    h.on_response(0, 7)
    h.on_error()
    lost = h.build({"a": (0, 1)})
    assert (lost.session_id, lost.epoch, lost.full) == (7, 0, True)
    h.on_response(0, 0)  # the leader's cache had no room: every fetch stays full
    assert h.build({"a": (0, 1)}).full and h.session_id == 0
