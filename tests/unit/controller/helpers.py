"""A controller wired to an in-memory "Raft log" (a list of batch payloads), plus shortcuts."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from typing import Any

from suoi.controller import (
    ControllerConfig,
    CreateTopicResult,
    Listener,
    MetadataBuilder,
    MetadataImage,
    NewTopic,
    QuorumController,
    Record,
    decode_batch,
    encode_batch,
)
from suoi.model import ErrorCode


def incarnation(broker_id: int, n: int = 0) -> uuid.UUID:
    return uuid.UUID(int=(broker_id + 1) << 32 | n, version=4)


class Harness:
    def __init__(self, brokers: int = 0, racks: Sequence[str | None] | None = None, *, seed: int = 0,
                 **config: Any) -> None:
        self.log: list[bytes] = []
        self.seed = seed
        self.now = 0
        self.config = ControllerConfig(**config)
        self.ctl = QuorumController(MetadataImage.EMPTY, append=self._append, now=0, config=self.config,
                                    rng=random.Random(seed))
        self.epochs: dict[int, int] = {}
        for b in range(brokers):
            self.add_broker(b, racks[b] if racks else None)

    def _append(self, records: Sequence[Record]) -> int:
        self.log.append(encode_batch(records))
        return len(self.log) - 1

    def replayed(self, upto: int | None = None) -> MetadataImage:
        """What a broker builds by replaying the log (entries 0..upto)."""
        b = MetadataBuilder()
        for offset, payload in enumerate(self.log[: None if upto is None else upto + 1]):
            b.apply_batch(decode_batch(payload), offset)
        return b.image()

    @property
    def image(self) -> MetadataImage:
        return self.ctl.image

    def restart_controller(self, now: int | None = None) -> None:
        """Fail over: a new controller from the committed (replayed) image."""
        self.ctl = QuorumController(self.replayed(), append=self._append, now=self.now if now is None else now,
                                    config=self.config, rng=random.Random(f"{self.seed}/{len(self.log)}"))

    def register(self, broker_id: int, rack: str | None = None, n: int = 0):  # type: ignore[no-untyped-def]
        r = self.ctl.register_broker(broker_id, incarnation(broker_id, n),
                                     [Listener("PLAINTEXT", "localhost", 9092 + broker_id)], rack, self.now)
        if r.response.error == ErrorCode.none:
            self.epochs[broker_id] = r.response.broker_epoch
        return r

    def heartbeat(self, broker_id: int, *, want_fence: bool = False, want_shutdown: bool = False,
                  offset: int | None = None, epoch: int | None = None):  # type: ignore[no-untyped-def]
        return self.ctl.heartbeat(
            broker_id, self.epochs[broker_id] if epoch is None else epoch, want_fence=want_fence,
            want_shutdown=want_shutdown, current_metadata_offset=self.ctl.last_offset if offset is None else offset,
            now=self.now)

    def add_broker(self, broker_id: int, rack: str | None = None) -> None:
        assert self.register(broker_id, rack).response.error == ErrorCode.none
        r = self.heartbeat(broker_id)
        assert r.response.error == ErrorCode.none and not r.response.is_fenced

    def heartbeat_all(self, *, except_: Sequence[int] = ()) -> None:
        for b, reg in self.image.brokers.items():
            if b not in except_ and not reg.fenced:
                self.heartbeat(b)

    def create(self, name: str, partitions: int = 1, rf: int = 1, **kw: Any) -> CreateTopicResult:
        return self.ctl.create_topics([NewTopic(name=name, num_partitions=partitions, replication_factor=rf, **kw)]
                                      ).response[0]

    def part(self, topic: str, p: int = 0):  # type: ignore[no-untyped-def]
        reg = self.image.partition(topic, p)
        assert reg is not None
        return reg

    def check_replay(self) -> None:
        """The controller's working state equals what replaying its log gives."""
        assert self.replayed() == self.image
