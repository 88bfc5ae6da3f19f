"""The transactions page: ongoing transactions and the producers each partition knows.

ListTransactions to every live broker (each coordinates some transactional ids),
FindCoordinator (transaction keys) then DescribeTransactions to each coordinator, and
DescribeProducers to each partition leader for the partitions it leads (one request per
leader). Read only when the page is open, at most once per poll interval whatever the number
of tabs (`TransactionsView.read` caches), since it is not part of the shared snapshot.
"""

from __future__ import annotations

from typing import Any

from suoi.http.console.kafka_reads import ClusterClient, OnDemand, failed, gather_ok

__all__ = ["TransactionsView"]

TXN_KEY_TYPE = 1


class TransactionsView:
    def __init__(self, client: ClusterClient, max_age: float) -> None:
        self.client = client
        self._on_demand = OnDemand(self._read, max_age)  # tabs asking together share one round of requests

    async def read(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        return await self._on_demand.get(snapshot)

    async def _read(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        alive = [b["id"] for b in snapshot["brokers"] if b["alive"]]
        leaders: dict[int, dict[str, list[int]]] = {}
        for t in snapshot["topics"]:
            if t["internal"]:
                continue
            for p in t["partitions"]:
                if p["leader"] >= 0:
                    leaders.setdefault(p["leader"], {}).setdefault(t["name"], []).append(p["partition"])
        lead_ids = list(leaders)
        results = await gather_ok([*(self._list(b) for b in alive),
                                   *(self._producers(b, leaders[b]) for b in lead_ids)])
        listed = {tid: (pid, state) for r in results[:len(alive)] if r for tid, pid, state in r}
        producers = [row for r in results[len(alive):] if r for row in r]
        described = await self._describe(sorted(listed))
        txns = []
        for tid, (pid, state) in sorted(listed.items()):
            d = described.get(tid, {})
            txns.append({"transactional_id": tid, "producer_id": pid, "state": d.get("state", state), **d})
        return {"transactions": txns, "producers": producers}

    async def _list(self, broker: int) -> list[tuple[str, int, str]]:
        from kio.schema.list_transactions.v0.request import ListTransactionsRequest

        response = await self.client.to(broker, ListTransactionsRequest(state_filters=(), producer_id_filters=()))
        return [(str(t.transactional_id), int(t.producer_id), t.transaction_state) for t in response.transaction_states]

    async def _describe(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        from kio.schema.describe_transactions.v0.request import DescribeTransactionsRequest
        from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
        from kio.schema.types import TransactionalId
        from kio.static.primitive import i8

        found = await self.client.any(FindCoordinatorRequest(key_type=i8(TXN_KEY_TYPE), coordinator_keys=tuple(ids)))
        by_coord: dict[int, list[str]] = {}
        for c in found.coordinators:
            if not failed(c.error_code):
                by_coord.setdefault(int(c.node_id), []).append(c.key)
        answers = await gather_ok([self.client.to(c, DescribeTransactionsRequest(
            transactional_ids=tuple(TransactionalId(t) for t in tids))) for c, tids in by_coord.items()])
        out = {}
        for response in answers:
            for s in (response.transaction_states if response else ()):
                if failed(s.error_code):
                    continue
                start = s.transaction_start_time
                out[str(s.transactional_id)] = {
                    "state": s.transaction_state, "producer_epoch": int(s.producer_epoch),
                    "timeout_ms": int(s.transaction_timeout.total_seconds() * 1000),
                    "start_ms": int(start.timestamp() * 1000) if start is not None and start.timestamp() > 0 else None,
                    "partitions": sorted(f"{t.topic}-{p}" for t in s.topics for p in t.partitions)}
        return out

    async def _producers(self, leader: int, parts: dict[str, list[int]]) -> list[dict[str, Any]]:
        from kio.schema.describe_producers.v0.request import DescribeProducersRequest, TopicRequest
        from kio.schema.types import TopicName
        from kio.static.primitive import i32

        response = await self.client.to(leader, DescribeProducersRequest(topics=tuple(
            TopicRequest(name=TopicName(t), partition_indexes=tuple(i32(p) for p in ps)) for t, ps in parts.items())))
        return [{"topic": str(t.name), "partition": int(p.partition_index), "producer_id": int(a.producer_id),
                 "producer_epoch": int(a.producer_epoch), "last_sequence": int(a.last_sequence),
                 "last_timestamp": int(a.last_timestamp), "txn_start_offset": int(a.current_txn_start_offset)}
                for t in response.topics for p in t.partitions if not failed(p.error_code) for a in p.active_producers]
