"""What a librdkafka consumer gets from each broker: Fetch requests, answer sizes and batches.

`bench_consume.py` measures consume msg/s and broker CPU; when the broker spends a fraction of
the CPU per message and the client still reads slower, the difference is in what the client is
sent. This script puts a byte-counting loopback proxy (its own process) between the same
librdkafka consumer and each broker (each broker advertises the proxy's port, so every
connection goes through it), fills every broker with the same messages (`bench_consume.fill`),
reads them back once per round, the brokers taking turns, and prints per broker: Fetch
requests, their version and max bytes, answers per second, answer bytes (median, max), records
bytes per partition, batches and records per batch as served, trailing partial batches, batches
that start before the fetch offset, and the client's CPU per message. The proxy adds a copy
and a hop, so its msg/s are not the brokers'; the counts and shapes are what it is for.

    python benchmarks/bench_consume_answers.py --tansu --messages 1000000 --rounds 2

Brokers and the proxy listen on 127.0.0.1 only and are stopped by PID at the end. A script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import statistics
import struct
import sys
import tempfile
import time
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_consume import fill  # noqa: E402
from common import REPO_ROOT, Target, _spawn, free_port, log, tansu_binary  # noqa: E402
from kio.index import load_request_schema, load_response_schema  # noqa: E402
from kio.serial import entity_reader  # noqa: E402
from phases import consume_phase  # noqa: E402

FETCH = 1
#: Fetch exchanges whose bytes the proxy keeps for decoding (per round); the rest are counted only.
KEEP = 400


# ---------------------------------------------------------------- the proxy (a child process)

async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, on_frame: Any) -> None:
    """Forward every chunk as it comes; hand each whole size-prefixed frame to ``on_frame``."""
    buf = bytearray()
    try:
        while True:
            chunk = await reader.read(1 << 20)
            if not chunk:
                break
            writer.write(chunk)
            buf += chunk
            while len(buf) >= 4:
                size = struct.unpack_from(">i", buf)[0]
                if len(buf) < 4 + size:
                    break
                on_frame(bytes(buf[4:4 + size]))
                del buf[:4 + size]
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


def _proxy_main(listen_port: int, upstream_port: int, conn: Any) -> None:
    """Serve until told to report: then send the round's records over ``conn`` and reset."""
    state: dict[str, Any] = {"pending": {}, "fetches": []}

    async def serve(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", upstream_port)
        pending: dict[int, tuple[int, int, bytes | None, float]] = {}

        def on_request(frame: bytes) -> None:
            key, version, corr = struct.unpack_from(">hhi", frame)
            keep = key == FETCH and len(state["fetches"]) < KEEP
            pending[corr] = (key, version, frame if keep else None, time.perf_counter())

        def on_response(frame: bytes) -> None:
            corr = struct.unpack_from(">i", frame)[0]
            key, version, req, t0 = pending.pop(corr, (-1, -1, None, 0.0))
            if key == FETCH:
                state["fetches"].append((version, len(frame) + 4, time.perf_counter() - t0, req,
                                         frame if req is not None else None))

        await asyncio.gather(_pump(cr, uw, on_request), _pump(ur, cw, on_response))

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", listen_port)
        loop = asyncio.get_running_loop()
        while True:
            cmd = await loop.run_in_executor(None, conn.recv)
            if cmd == "stop":
                break
            conn.send(state["fetches"])
            state["fetches"] = []
        server.close()

    asyncio.run(main())


# ---------------------------------------------------------------- decoding what was kept

def _topic(t: Any) -> str:
    return getattr(t, "topic", None) or str(getattr(t, "topic_id", ""))


def _decode(version: int, req: bytes, resp: bytes) -> list[dict[str, int]]:
    """Per partition of one Fetch exchange: fetch offset, partition max bytes, records bytes,
    batches, records, a partial batch at the end, records before the fetch offset."""
    rq = load_request_schema(FETCH, version)
    header, used = entity_reader(rq.__header_schema__)(req, 0)
    request, _ = entity_reader(rq)(req, used)
    asked = {(_topic(t), p.partition): (p.fetch_offset, p.partition_max_bytes)
             for t in request.topics for p in t.partitions}
    rs = load_response_schema(FETCH, version)
    header, used = entity_reader(rs.__header_schema__)(resp, 0)
    response, _ = entity_reader(rs)(resp, used)
    out = []
    for t in response.responses:
        name = _topic(t)
        for p in t.partitions:
            data = p.records or b""
            fetch_offset, pmax = asked.get((name, p.partition_index), (-1, -1))
            batches = records = before = 0
            pos = 0
            partial = 0
            while len(data) - pos >= 61:
                base, length = struct.unpack_from(">qi", data, pos)
                count = struct.unpack_from(">i", data, pos + 57)[0]
                if pos + 12 + length > len(data):
                    partial = len(data) - pos
                    break
                batches += 1
                records += count
                if base < fetch_offset:
                    before += min(count, fetch_offset - base)
                pos += 12 + length
            else:
                partial = len(data) - pos
            out.append({"fetch_offset": fetch_offset, "partition_max_bytes": pmax, "bytes": len(data),
                        "batches": batches, "records": records, "partial": partial, "before": before,
                        "max_bytes": request.max_bytes, "min_bytes": request.min_bytes,
                        "max_wait_ms": int(request.max_wait.total_seconds() * 1000),
                        "isolation": request.isolation_level})
    return out


def _first_batch(version: int, resp: bytes) -> str:
    """The first batch's header fields and its first record's bytes (hex), to compare encodings."""
    rs = load_response_schema(FETCH, version)
    header, used = entity_reader(rs.__header_schema__)(resp, 0)
    response, _ = entity_reader(rs)(resp, used)
    data = next(p.records for t in response.responses for p in t.partitions if p.records)
    base, length, epoch, magic, crc, attrs, last_delta, ts0, tsmax, pid, pepoch, bseq, count = struct.unpack_from(
        ">qiibIhiqqqhii", data)
    return (f"len={length} attrs={attrs} last_delta={last_delta} ts0={ts0} tsmax={tsmax} pid={pid} count={count} "
            f"rec0={data[61:61 + 24].hex()}")


def summarize(label: str, fetches: list[tuple[int, int, float, bytes | None, bytes | None]],
              res: dict[str, Any]) -> dict[str, Any]:
    parts = [p for v, _n, _t, rq, rs in fetches if rq is not None and rs is not None for p in _decode(v, rq, rs)]
    with_data = [p for p in parts if p["bytes"]]
    sizes = [n for _v, n, _t, _rq, _rs in fetches]
    big = [n for n in sizes if n > 1000]
    recs_per_batch = [p["records"] / p["batches"] for p in with_data if p["batches"]]
    first = next((rs for *_x, rs in fetches if rs is not None and len(rs) > 1000), None)
    return {
        "first_batch": _first_batch(fetches[0][0], first) if first else "",
        "label": label, "msg_s": res["msg_s"], "elapsed_s": res["elapsed_s"],
        "client_cpu_us_msg": res["client_cpu_s"] * 1e6 / max(res["received"], 1),
        "client_faults_per_1k_msg": res["client_minflt"] * 1e3 / max(res["received"], 1),
        "fetches": len(fetches), "versions": sorted(Counter(v for v, *_ in fetches).items()),
        "fetches_with_data": len(big),
        "answer_bytes_median": statistics.median(big) if big else 0, "answer_bytes_max": max(sizes, default=0),
        "answer_ms_median": statistics.median(t for _v, n, t, *_ in fetches if n > 1000) * 1e3 if big else 0,
        "partitions_with_data_per_answer": len(with_data) / max(1, len({id(rs) for *_x, rs in fetches if rs})),
        "records_bytes_median": statistics.median(p["bytes"] for p in with_data) if with_data else 0,
        "batches_per_partition_median": statistics.median(p["batches"] for p in with_data) if with_data else 0,
        "records_per_batch_median": statistics.median(recs_per_batch) if recs_per_batch else 0,
        "partial_tails": sum(1 for p in with_data if p["partial"]), "partial_tail_bytes_max": max(
            (p["partial"] for p in with_data), default=0),
        "records_before_fetch_offset": sum(p["before"] for p in with_data),
        "request": {k: parts[0][k] for k in ("max_bytes", "min_bytes", "max_wait_ms", "partition_max_bytes",
                                             "isolation")} if parts else {},
    }


# ---------------------------------------------------------------- brokers behind proxies

def start_behind_proxy(label: str, port: int, proxy_port: int, ready_timeout: float,
                       tansu_bin: str | None) -> Target:
    workdir = tempfile.mkdtemp(prefix=f"bench-answers-{label}-")
    adv = f"127.0.0.1:{proxy_port}"
    if label == "tansu":
        argv = [tansu_binary(tansu_bin), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
                "--advertised-listener-url", f"tcp://{adv}", "--storage-engine", "memory://tansu/"]
        env = {k: v for k, v in os.environ.items()
               if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE")}
        return _spawn(label, argv, port, env=env, workdir=workdir, ready_timeout=ready_timeout, is_peer=True)
    logdir = os.path.join(workdir, "data")
    os.makedirs(logdir)
    argv = [sys.executable, "-m", "suoi", "broker", "--listeners", f"PLAINTEXT://127.0.0.1:{port}",
            "--advertised-listeners", f"PLAINTEXT://{adv}", "--log-dirs", logdir]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"))
    return _spawn(label, argv, port, env=env, workdir=workdir, ready_timeout=ready_timeout, is_peer=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tansu", action="store_true")
    ap.add_argument("--tansu-bin", default=None)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--consume-seconds", type=float, default=60.0)
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    args = ap.parse_args()

    labels = ["suoi"] + (["tansu"] if args.tansu else [])
    ctx = mp.get_context("spawn")
    proxies: dict[str, tuple[Any, Any, int]] = {}
    targets: dict[str, Target] = {}
    topic = f"answers-{args.size}"
    try:
        for label in labels:
            port, pport = free_port(), free_port()
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=_proxy_main, args=(pport, port, theirs), daemon=True)
            proc.start()
            proxies[label] = (proc, ours, pport)
            targets[label] = t = start_behind_proxy(label, port, pport, args.ready_timeout, args.tansu_bin)
            log(f"{label}: producing {args.messages} x {args.size} B")
            fill(t, topic, args.partitions, args.messages, args.size, args.batch)
        results: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
        for r in range(args.rounds):
            for label in labels[r % len(labels):] + labels[:r % len(labels)]:
                proc, pipe, pport = proxies[label]
                res = consume_phase(f"127.0.0.1:{pport}", topic, args.partitions, args.messages,
                                    args.consume_seconds, targets[label].pid)
                pipe.send("report")
                s = summarize(label, pipe.recv(), res)
                results[label].append(s)
                log(f"round {r + 1} {label}: {s}")
        for label in labels:
            print(f"\n{label}:")
            for key in results[label][0]:
                print(f"  {key:<34} " + " | ".join(str(_round(s[key])) for s in results[label]))
    finally:
        for proc, pipe, _p in proxies.values():
            with contextlib.suppress(BrokenPipeError, OSError):
                pipe.send("stop")
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
        for t in targets.values():
            t.stop()


def _round(v: Any) -> Any:
    return round(v, 3) if isinstance(v, float) else v


if __name__ == "__main__":
    main()
