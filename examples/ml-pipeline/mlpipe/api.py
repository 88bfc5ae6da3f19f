"""5. SERVING: consumer group `api-servers` reads `predictions` and keeps each user's latest
recommendations in memory; a small aiohttp app answers GET /users/{user_id}/recommendations.

One api-server reads all partitions. With several, each would get a share of the users (by
partition) and a load balancer would route by user_id, or each would use its own group."""

from __future__ import annotations

import asyncio
import json
import threading

from aiohttp import web
from confluent_kafka import Consumer

from .config import Pipeline, log

GROUP = "api-servers"


class Recommendations:
    def __init__(self) -> None:
        self.latest: dict[str, dict] = {}
        self.consumed = 0

    def follow(self, p: Pipeline, stop: threading.Event) -> None:
        consumer = Consumer(p.client(**{"group.id": p.name(GROUP), "auto.offset.reset": "earliest"}))
        consumer.subscribe([p.predictions])
        try:
            while not stop.is_set():
                msg = consumer.poll(0.2)
                if msg is None or msg.error():
                    continue
                pred = json.loads(msg.value())
                self.latest[pred["user_id"]] = pred  # one partition per user: newest last
                self.consumed += 1
        finally:
            consumer.close()

    def app(self) -> web.Application:
        async def recommendations(request: web.Request) -> web.Response:
            pred = self.latest.get(request.match_info["user_id"])
            if pred is None:
                return web.json_response({"error": "no predictions for this user yet"}, status=404)
            return web.json_response(pred)

        async def health(_: web.Request) -> web.Response:
            return web.json_response({"users": len(self.latest), "predictions_consumed": self.consumed})

        app = web.Application()
        app.router.add_get("/users/{user_id}/recommendations", recommendations)
        app.router.add_get("/health", health)
        return app


def run_api(p: Pipeline, stop: threading.Event, host: str = "127.0.0.1", port: int = 8088,
            ready: threading.Event | None = None) -> None:
    """Serve until `stop` (the consumer runs in a thread beside the event loop)."""
    recs = Recommendations()
    follower = threading.Thread(target=recs.follow, args=(p, stop), name="api-follower")
    follower.start()

    async def main() -> None:
        runner = web.AppRunner(recs.app())
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        log.info("api-servers: http://%s:%d/users/<user_id>/recommendations", host, port)
        if ready:
            ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.2)
        await runner.cleanup()

    try:
        asyncio.run(main())
    finally:
        stop.set()
        follower.join()
