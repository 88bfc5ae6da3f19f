"""all_endpoints_refuse: the active controller fences a broker at once only when every endpoint
it registered refuses a connection (its process is gone); one listening endpoint keeps it."""

from __future__ import annotations

import asyncio
import socket

from suoi.cluster.active_controller import all_endpoints_refuse
from suoi.controller.records import Listener


def _closed_port() -> int:
    with socket.socket() as s:  # bound then closed: nothing listens there now
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_refused_everywhere_versus_one_endpoint_listening() -> None:
    async def scenario() -> tuple[bool, bool]:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        live = server.sockets[0].getsockname()[1]
        dead_a, dead_b = _closed_port(), _closed_port()
        try:
            gone = await all_endpoints_refuse([Listener("PLAINTEXT", "127.0.0.1", dead_a),
                                               Listener("SSL", "127.0.0.1", dead_b)])
            alive = await all_endpoints_refuse([Listener("PLAINTEXT", "127.0.0.1", dead_a),
                                                Listener("SSL", "127.0.0.1", live)])
        finally:
            server.close()
            await server.wait_closed()
        return gone, alive

    gone, alive = asyncio.run(scenario())
    assert gone is True
    assert alive is False
