"""Finding the metadata quorum from `controller.quorum.bootstrap.servers` (KIP-853).

A broker-only node configured with bootstrap servers instead of `controller.quorum.voters`
asks them (DescribeQuorum v2, whose `nodes` list the voters' endpoints) for the voter set before
its quorum driver starts, retrying while the controllers come up. The voters are then static
for the life of the process, as with `controller.quorum.voters`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from suoi.client import request_once
from suoi.cluster.settings import KRaftSettings
from suoi.security.client import PLAINTEXT, ClientSecurity

log = logging.getLogger("suoi.cluster")

METADATA_TOPIC = "__cluster_metadata"


async def discover_voters(settings: KRaftSettings, *, timeout_s: float = 120.0,
                          attempt_timeout_s: float = 2.0, security: ClientSecurity = PLAINTEXT) -> KRaftSettings:
    """`settings` with the voters its bootstrap servers report (unchanged if it has voters)."""
    if settings.voters or not settings.bootstrap_servers:
        return settings
    from kio.schema.describe_quorum.v2.request import DescribeQuorumRequest

    from suoi.protocol.codec import build

    request = build(DescribeQuorumRequest, {"topics": [{"topic_name": METADATA_TOPIC,
                                                        "partitions": [{"partition_index": 0}]}]})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last = "no answer"
    delay = 0.1
    while loop.time() < deadline:
        for host, port in settings.bootstrap_servers:
            try:
                response = await request_once(host, port, request, client_id=f"suoi-node-{settings.node_id}",
                                              timeout=attempt_timeout_s, security=security)
            except (OSError, TimeoutError) as exc:
                last = f"{host}:{port}: {exc or type(exc).__name__}"
                continue
            voters = {int(n.node_id): (str(lst.host), int(lst.port)) for n in response.nodes
                      for lst in n.listeners[:1]}
            if response.error_code == 0 and voters:
                log.info("metadata quorum from %s:%d: voters %s", host, port,
                         ",".join(f"{v}@{h}:{p}" for v, (h, p) in sorted(voters.items())))
                return dataclasses.replace(settings, voters=voters, bootstrap_servers=())
            last = f"{host}:{port}: error {response.error_code}, {len(voters)} voters"
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)
    raise RuntimeError(f"no metadata quorum found through controller.quorum.bootstrap.servers within "
                       f"{timeout_s:g}s ({last})")
