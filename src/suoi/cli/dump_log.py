"""`suoi dump-log`: kafka-dump-log.sh -- print (and check) log files offline.

Reads segment files directly (no broker needed, and it may run while one does): `.log`
batches (records too with --deep-iteration or --print-data-log), `.index` / `.timeindex`
entries, producer-state `.snapshot` files (suoi's JSON) and `leader-epoch-checkpoint`.
The lines follow Kafka's tool. `--verify` (a suoi addition) checks every batch of each
`.log` the way the broker does before serving it (framing, offsets, CRC32C), reports each
bad one with file and position - resynchronising on the next batch whose CRC32C matches
after a framing error - and exits 1 if any was found.

The one exception to "tools do not import the broker's internals": the checks are the log
package's `batch_check` (pure functions over bytes), so tool and broker agree on what is bad.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from pathlib import Path
from typing import Any, TextIO

from suoi.cli.common import CliError, guarded
from suoi.log.batch_check import find_next_batch, is_crc_problem, scan_batches
from suoi.protocol.records import HEADER_SIZE, BatchHeader, decode_batch_records, parse_batch_header

_CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
_CLEANER_CHECKPOINT = "cleaner-offset-checkpoint"


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "dump-log", help="print or verify log segment, index and snapshot files offline (kafka-dump-log)",
        description="Print the contents of log files (.log, .index, .timeindex, .snapshot, "
        "leader-epoch-checkpoint) read directly from disk. Same flags as Kafka's kafka-dump-log.sh, "
        "plus --verify.",
        epilog="example: suoi dump-log --files /var/suoi/orders-0/00000000000000000000.log --print-data-log",
    )
    p.add_argument("--files", required=True, metavar="F1[,F2]", help="comma-separated files to dump")
    p.add_argument("--print-data-log", action="store_true", help="print the records' keys and values "
                   "(implies --deep-iteration)")
    p.add_argument("--deep-iteration", action="store_true", help="print every record, not only the batches")
    p.add_argument("--verify", action="store_true", help="check every batch's framing, offsets and CRC32C; "
                   "report each bad one and exit 1 if any")
    p.set_defaults(func=run)


@guarded("dump-log")
def run(args: argparse.Namespace) -> int:
    files = [Path(f) for f in str(args.files).split(",") if f]
    if not files:
        raise CliError("--files names no file")
    bad = 0
    for path in files:
        if not path.is_file():
            raise CliError(f"{path} is not a file")
        print(f"Dumping {path}")
        bad += dump_file(path, sys.stdout, deep=args.deep_iteration or args.print_data_log,
                         data=args.print_data_log, verify=args.verify)
    if args.verify:
        print(f"Found {bad} corrupt batch(es) or index entries" if bad else "All batches verified")
    return 1 if bad else 0


def dump_file(path: Path, out: TextIO, *, deep: bool = False, data: bool = False, verify: bool = False) -> int:
    """Print ``path``; returns the number of bad batches found (``.log`` files only)."""
    name = path.name
    if name.endswith(".log"):
        return _dump_log(path, out, deep=deep, data=data, verify=verify)
    if name.endswith(".index"):
        entries = _dump_entries(path, out, struct.Struct(">ii"), "offset: {base} position: {1}", relative=0)
        return _verify_index(path, entries, out) if verify else 0
    elif name.endswith(".timeindex"):
        _dump_entries(path, out, struct.Struct(">qi"), "timestamp: {0} offset: {base}", relative=1)
    elif name.endswith(".snapshot"):
        _dump_snapshot(path, out)
    elif name == "leader-epoch-checkpoint":
        lines = path.read_text().split("\n")
        for line in lines[2:]:
            if line.strip():
                epoch, offset = line.split()
                print(f"epoch: {epoch} startOffset: {offset}", file=out)
    else:
        raise CliError(f"{path}: not a .log, .index, .timeindex, .snapshot or leader-epoch-checkpoint file")
    return 0


def _base_offset(path: Path) -> int:
    stem = path.name.split(".", 1)[0]
    if not (stem.isdigit() and len(stem) == 20):
        raise CliError(f"{path}: not a segment file name (20 digits: the base offset)")
    return int(stem)


def _dump_entries(path: Path, out: TextIO, entry: struct.Struct, line: str, *, relative: int) -> list[tuple[int, int]]:
    """Print the entries; returns them as (absolute offset or timestamp, value)."""
    base = _base_offset(path)
    raw = path.read_bytes()
    whole = len(raw) - len(raw) % entry.size
    entries = []
    for fields in entry.iter_unpack(raw[:whole]):
        print(line.format(*fields, base=base + fields[relative]), file=out)
        entries.append((base + fields[0], fields[1]) if relative == 0 else (fields[0], base + fields[1]))
    if whole != len(raw):
        print(f"{len(raw) - whole} trailing bytes are not a whole entry", file=out)
    return entries


def _verify_index(path: Path, entries: list[tuple[int, int]], out: TextIO) -> int:
    """Each offset-index entry must point at a batch starting at its offset in the .log beside it."""
    log_path = path.with_suffix(".log")
    if not log_path.is_file():
        raise CliError(f"{path}: no {log_path.name} beside it to verify the index against")
    bad = 0
    with open(log_path, "rb") as f:
        for offset, position in entries:
            f.seek(position)
            head = f.read(HEADER_SIZE)
            if len(head) < HEADER_SIZE or (h := parse_batch_header(head)).magic != 2 or h.base_offset != offset:
                bad += 1
                print(f"Found bad index entry (offset {offset}, position {position}) in {path}: "
                      f"no batch of that offset starts there", file=out)
    return bad


def _dump_snapshot(path: Path, out: TextIO) -> None:
    try:
        doc = json.loads(path.read_text())
    except ValueError as e:
        raise CliError(f"{path}: not a producer snapshot: {e}") from None
    for p in doc.get("producers", []):
        txn = p.get("txn", -1)
        for first_seq, last_seq, first_offset, last_offset, ts in p.get("batches", []):
            print(f"producerId: {p['pid']} producerEpoch: {p['epoch']} coordinatorEpoch: {p.get('ce', -1)} "
                  f"currentTxnFirstOffset: {txn if txn >= 0 else 'None'} lastTimestamp: {p.get('ts', -1)} "
                  f"firstSequence: {first_seq} lastSequence: {last_seq} lastOffset: {last_offset} "
                  f"offsetDelta: {last_offset - first_offset} timestamp: {ts}", file=out)


def _dump_log(path: Path, out: TextIO, *, deep: bool, data: bool, verify: bool) -> int:
    base = _base_offset(path)
    strict = not (path.parent / _CLEANER_CHECKPOINT).exists()
    print(f"Log starting offset: {base}", file=out)
    fd = os.open(path, os.O_RDONLY)
    try:
        end = os.fstat(fd).st_size
        bad = 0
        pos, expected = 0, base
        while pos < end:
            resync = None
            for bpos, h, problem in scan_batches(fd, pos, end, expected, strict=strict):
                if h is not None:
                    _print_batch(out, fd, bpos, h, problem, deep=deep and problem is None, data=data)
                if problem is not None:
                    bad += 1
                    print(f"Found corrupt batch at position {bpos} of {path}: {problem}", file=out)
                if h is None or (problem is not None and not is_crc_problem(problem)):
                    resync = bpos  # the framing is lost: look for the next batch
                    break
                expected = h.next_offset
                pos = bpos + h.size
            else:
                break
            nxt = find_next_batch(fd, resync, end) if verify else None
            if nxt is None:
                if not verify:
                    print(f"Stopped at position {resync}: the rest of the file cannot be read as batches", file=out)
                break
            print(f"Resynchronised at position {nxt} ({nxt - resync} bytes skipped)", file=out)
            pos = nxt
            expected = parse_batch_header(os.pread(fd, HEADER_SIZE, nxt)).base_offset
        return bad
    finally:
        os.close(fd)


def _print_batch(out: TextIO, fd: int, pos: int, h: BatchHeader, problem: str | None, *, deep: bool,
                 data: bool) -> None:
    last_seq = h.base_sequence + h.last_offset_delta if h.base_sequence >= 0 else -1
    ts_type = "LogAppendTime" if h.attributes & 0x08 else "CreateTime"
    print(f"baseOffset: {h.base_offset} lastOffset: {h.last_offset} count: {h.records_count} "
          f"baseSequence: {h.base_sequence} lastSequence: {last_seq} producerId: {h.producer_id} "
          f"producerEpoch: {h.producer_epoch} partitionLeaderEpoch: {h.partition_leader_epoch} "
          f"isTransactional: {str(bool(h.attributes & 0x10)).lower()} "
          f"isControl: {str(bool(h.attributes & 0x20)).lower()} position: {pos} {ts_type}: {h.max_timestamp} "
          f"size: {h.size} magic: {h.magic} compresscodec: {_CODECS.get(h.attributes & 0x07, 'unknown')} "
          f"crc: {h.crc} isvalid: {str(problem is None).lower()}", file=out)
    if not deep:
        return
    try:
        records = decode_batch_records(os.pread(fd, h.size, pos), 0, h)
    except Exception as e:  # a CRC-valid batch whose records do not decode: say so, go on
        print(f"| cannot decode the records: {e}", file=out)
        return
    for r in records:
        seq = h.base_sequence + (r.offset or 0) - h.base_offset if h.base_sequence >= 0 else -1
        line = (f"| offset: {r.offset} {ts_type}: {r.timestamp_ms} keySize: {len(r.key) if r.key is not None else -1} "
                f"valueSize: {len(r.value) if r.value is not None else -1} sequence: {seq} "
                f"headerKeys: [{','.join(k for k, _ in r.headers)}]")
        if data:
            if r.key is not None:
                line += f" key: {r.key.decode(errors='replace')}"
            line += f" payload: {r.value.decode(errors='replace') if r.value is not None else 'null'}"
        print(line, file=out)
