"""bench_replication.py's printed table: one row per figure with its target or spread, the node
logs' ERROR / Traceback counts, and the run's conditions (producer settings, machine load)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from common import fmt_num
from replication_phases import PRODUCER_CONF

THROUGHPUT_TARGET_PCT = 50.0
FAILOVER_TARGET_S = 5.0


def print_table(out: dict[str, Any], args: argparse.Namespace) -> None:
    rows: list[tuple[str, str, str]] = []
    if "throughput" in out:
        t = out["throughput"]
        for rf, acks in args.runs:
            r = t[f"rf{rf}_acks{acks}"]
            idempotent = acks == "all" and not args.no_idempotence
            what = f"produce {args.size} B RF={rf} acks={acks}{' idempotent' if idempotent else ''}"
            spread = f"runs {fmt_num(r['mb_s_min'])}..{fmt_num(r['mb_s_max'])}" if args.rounds > 1 else ""
            rows.append((f"{what} (MB/s)", fmt_num(r["mb_s"]), spread))
            rows.append((f"{what} (msgs/s)", fmt_num(r["msg_s"]), ""))
            rows.append((f"{what}: cluster CPU per MB (ms)", fmt_num(r["cpu_ms_per_mb"]), ""))
            rows.append((f"{what}: Produce at the broker (ms) / in flight per partition",
                         f"{fmt_num(r.get('produce_ms'))} / {fmt_num(r.get('produce_in_flight'))}",
                         f"cycle per partition {fmt_num(r.get('cycle_ms'))} ms"))
            if (rf, acks) == (3, "1"):
                rows.append((f"{what} until replicated (MB/s)", fmt_num(r["replicated_mb_s"]), ""))
            if r["errors"]:
                rows.append((f"{what} failed/undelivered", str(r["errors"]), "0"))
        if t["ratio_pct"] is not None:
            ok = "ok" if t["ratio_pct"] >= THROUGHPUT_TARGET_PCT else "MISSED"
            rows.append(("RF=3 acks=all / RF=1 acks=1 (%)", fmt_num(t["ratio_pct"]), f">= {THROUGHPUT_TARGET_PCT:g} {ok}"))
        if t["ratio_idempotent_pct"] is not None:
            rows.append(("RF=3 acks=all / RF=1 acks=all, both idempotent (%)", fmt_num(t["ratio_idempotent_pct"]), ""))
    for key, what in (("latency_rf3_all", "RF=3 acks=all idempotent"), ("latency_rf1_1", "RF=1 acks=1")):
        if key in out:
            r = out[key]
            for q in ("p50", "p99", "max"):
                rows.append((f"latency {what} {q} (ms)", fmt_num(r[f"{q}_ms"]), ""))
            if r["failed"]:
                rows.append((f"latency {what} failed", str(r["failed"]), "0"))
    for key, what in (("failover_sigterm", "SIGTERM (controlled shutdown)"),
                      ("failover_default", "kill -9, default timeouts (9000/2000 ms)"),
                      ("failover_tuned", "kill -9, tuned timeouts (3000/500 ms)")):
        if key in out:
            r = out[key]
            target = f"< {FAILOVER_TARGET_S:g}" if key == "failover_default" else ""
            if target and r["first_ack_s"] is not None:
                target += " ok" if r["first_ack_s"] < FAILOVER_TARGET_S else " MISSED"
            rows.append((f"failover {what}: kill -> new leader (s)", fmt_num(r["new_leader_s"]), ""))
            rows.append((f"failover {what}: kill -> first ack (s)", fmt_num(r["first_ack_s"]), target))
            rows.append((f"failover {what}: longest pause in acks (s)", fmt_num(r["longest_pause_s"]), ""))
            rows.append((f"failover {what}: failed / lost / dup", f"{r['failed']} / {r['lost_acked']} / "
                         f"{r['duplicates']}", "0 / 0 / 0"))
    for key, counts in out.get("logs", {}).items():
        if counts["error"] or counts["traceback"]:
            rows.append((f"node logs after {key}: ERROR / Traceback", f"{counts['error']} / {counts['traceback']}", "0"))
    total = [sum(c[k] for c in out.get("logs", {}).values()) for k in ("error", "traceback")]
    rows.append(("node logs, all phases: ERROR / Traceback lines", f"{total[0]} / {total[1]}", "0"))
    exceptions: dict[str, int] = {}
    for c in out.get("logs", {}).values():
        for name, n in c["exceptions"].items():
            exceptions[name] = exceptions.get(name, 0) + n
    width = max(len(r[0]) for r in rows) + 2
    print(f"\n{'figure':<{width}}{'value':>14}   target / spread")
    for name, value, target in rows:
        print(f"{name:<{width}}{value:>14}   {target}")
    for name, err in out.get("errors", {}).items():
        print(f"phase {name} FAILED: {err}")
    if exceptions:
        print("exceptions in node logs: " + ", ".join(f"{k} x{v}" for k, v in sorted(exceptions.items())))
    if "throughput" in out:
        print(f"\nthroughput: median of {args.rounds} run(s) of {args.messages:,} messages per configuration")
    conf = {**PRODUCER_CONF, "batch.size": getattr(args, "batch_size", PRODUCER_CONF["batch.size"]),
            "queue.buffering.max.kbytes": getattr(args, "queue_kb", PRODUCER_CONF["queue.buffering.max.kbytes"])}
    print(f"producer (throughput): {', '.join(f'{k}={v}' for k, v in conf.items())}; "
          "acks=1 without idempotence, acks=all with enable.idempotence=true; acks=all topics have "
          "min.insync.replicas=2.")
    print("failover: a broker is fenced (its partitions get new leaders) when it misses "
          "broker.session.timeout.ms of heartbeats, or sooner when its heartbeat connection closes and "
          "it does not come back within broker.connection.loss.fence.ms (at once if its endpoints refuse "
          "connections, as after kill -9); 'first ack' is the delivery report of the first message "
          "produced after the kill. Throughput: on one machine every replica's work shares the same "
          "cores, so RF=3 costs about three times the CPU of RF=1.")
    print(f"machine: {os.cpu_count()} CPUs, load average {out['load_before']} before, "
          f"{out.get('load_after')} after (clients and all 4 nodes share it)")
