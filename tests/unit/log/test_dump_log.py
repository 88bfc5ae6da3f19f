"""`suoi dump-log` on real segment files: Kafka's output lines, and `--verify` finding every
kind of damage the broker refuses to serve (exit 1, file and position)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from suoi.cli.main import main
from suoi.log.partition_log import PartitionLog
from tests.unit.log.log_helpers import OpenLog, batch, batch_positions, flip
from tests.unit.log.test_corruption import CFG, KINDS, N_BATCHES, _filled


def dump(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["dump-log", *args])
    return code, capsys.readouterr().out


def test_prints_batches_records_and_indexes(open_log: OpenLog, capsys: pytest.CaptureFixture[str]) -> None:
    log = _filled(open_log)
    seg = log.segments[1]
    code, out = dump(capsys, "--files", f"{seg.log_path},{seg.log_path.with_suffix('.index')},"
                     f"{seg.log_path.with_suffix('.timeindex')}", "--print-data-log")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Dumping {seg.log_path}" and lines[1] == f"Log starting offset: {seg.base_offset}"
    batches = [ln for ln in lines if ln.startswith("baseOffset:")]
    assert batches[0].startswith(f"baseOffset: {seg.base_offset} lastOffset: {seg.base_offset + 2} count: 3 ")
    assert all("isvalid: true" in ln and "magic: 2" in ln and "compresscodec: none" in ln for ln in batches)
    first_tag = seg.base_offset // 3
    assert f"| offset: {seg.base_offset} CreateTime: {1000 + first_tag} keySize: 2 valueSize: 10 sequence: -1 " \
           f"headerKeys: [] key: k0 payload: {f'{first_tag}-0-'.ljust(10, 'x')}" in lines
    index_lines = [ln for ln in lines if ln.startswith("offset: ")]
    assert index_lines and all(" position: " in ln for ln in index_lines)
    assert [ln for ln in lines if ln.startswith("timestamp: ")]
    code, out = dump(capsys, "--files", str(seg.log_path), "--verify")
    assert code == 0 and out.splitlines()[-1] == "All batches verified"


@pytest.mark.parametrize("kind", list(KINDS))
def test_verify_reports_each_kind_of_damage(open_log: OpenLog, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    log = _filled(open_log)
    path = log.segments[1].log_path
    pos, _ = batch_positions(path)[2]
    at, mask = KINDS[kind]
    flip(path, pos + at, mask)
    others = ",".join(str(s.log_path) for s in log.segments if s.log_path != path)
    code, out = dump(capsys, "--files", f"{path},{others}", "--verify")
    assert code == 1
    found = [ln for ln in out.splitlines() if ln.startswith("Found corrupt batch")]
    assert found and found[0].startswith(f"Found corrupt batch at position {pos} of {path}: ")
    assert out.splitlines()[-1] == f"Found {len(found)} corrupt batch(es) or index entries"


def test_verify_finds_every_bad_batch_of_a_file_and_resynchronises(open_log: OpenLog) -> None:
    log: PartitionLog = open_log(segment_bytes=1 << 20, index_interval_bytes=150)
    for i in range(N_BATCHES):
        log.append(batch(3, tag=i))
    log.flush()
    log.close()
    path = log.segments[0].log_path
    positions = batch_positions(path)
    flip(path, positions[3][0] + 70)  # CRC
    flip(path, positions[10][0] + 8, 0x40)  # framing lost: resynchronise
    flip(path, positions[20][0] + 18)  # CRC after the resync
    proc = subprocess.run([sys.executable, "-m", "suoi", "dump-log", "--files", str(path), "--verify"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 1, proc.stderr
    found = [ln for ln in proc.stdout.splitlines() if ln.startswith("Found corrupt batch")]
    assert [int(ln.split()[5]) for ln in found] == [positions[3][0], positions[10][0], positions[20][0]]
    assert f"Resynchronised at position {positions[11][0]} " in proc.stdout
    assert f"baseOffset: {3 * (N_BATCHES - 1)} " in proc.stdout  # read to the end


def test_snapshot_and_leader_epoch_files(open_log: OpenLog, capsys: pytest.CaptureFixture[str]) -> None:
    from suoi.protocol.records import build_batch

    log = open_log(**CFG)
    log.append(build_batch([(b"k", b"v")], producer_id=7, producer_epoch=1, base_sequence=0), leader_epoch=3)
    log.roll()
    log.leader_epoch_cache.assign(4, log.log_end_offset)
    log.close()
    snap = sorted(log.directory.glob("*.snapshot"))[-1]
    code, out = dump(capsys, "--files", f"{snap},{log.directory / 'leader-epoch-checkpoint'}")
    assert code == 0
    assert "producerId: 7 producerEpoch: 1 " in out and "firstSequence: 0 lastSequence: 0 lastOffset: 0" in out
    assert "epoch: 3 startOffset: 0" in out and "epoch: 4 startOffset: 1" in out


def test_refuses_an_unknown_file_with_one_line(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    other = Path(str(tmp_path)) / "notes.txt"
    other.write_text("x")
    assert main(["dump-log", "--files", str(other)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a .log" in err[0]


def test_verify_checks_offset_index_entries_against_the_log(open_log: OpenLog, capsys: pytest.CaptureFixture[str]) -> None:
    log = _filled(open_log)
    index = log.segments[1].log_path.with_suffix(".index")
    assert dump(capsys, "--files", str(index), "--verify")[0] == 0
    raw = bytearray(index.read_bytes())
    raw[12:16] = (int.from_bytes(raw[12:16], "big") + 1).to_bytes(4, "big")  # second entry moved one byte
    index.write_bytes(bytes(raw))
    code, out = dump(capsys, "--files", str(index), "--verify")
    offset = log.segments[1].base_offset + int.from_bytes(raw[8:12], "big")
    assert code == 1
    assert f"Found bad index entry (offset {offset}, position {int.from_bytes(raw[12:16], 'big')}) in {index}" in out
