"""`PartitionLog.read_records`, the Fetch read: the same batches as `read` whether they come as
checked bytes or as sendfile regions (`FileRegion`, only of batches verified before, found by
jumping over offset-index entries), the offset after them for read_committed, and a bad batch
stopping it as it stops `read`. Real segment files."""

from __future__ import annotations

import pytest

from suoi.log import log_reads
from suoi.log.errors import CorruptRecordError
from suoi.log.transactions import next_offset_after
from suoi.protocol.file_records import FileRecords, FileRegion
from tests.unit.log.log_helpers import OpenLog, batch, batch_positions, flip

CFG = {"segment_bytes": 2000, "index_interval_bytes": 150}


def _filled(open_log: OpenLog) -> object:
    log = open_log(**CFG)
    for i in range(60):
        log.append(batch(1 + i % 3, payload=40 + i * 3, tag=i))
    assert len(log.segments) > 4
    return log


def _bytes(records: object) -> bytes:
    return bytes(records)  # type: ignore[call-overload]


def test_regions_and_bytes_select_what_read_selects(open_log: OpenLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_reads, "SENDFILE_MIN_BYTES", 1)  # every verified span as a region
    log = _filled(open_log)
    regions = 0
    for offset in (0, 1, 7, 20, 33, 50, 77, log.log_end_offset):  # type: ignore[attr-defined]
        for max_bytes in (0, 1, 150, 700, 1500, 1 << 20):
            for min_one in (True, False):
                for max_offset in (None, 25, 90):
                    expected = bytes(log.read(offset, max_bytes, max_offset=max_offset,  # type: ignore[attr-defined]
                                              min_one_batch=min_one))
                    records, following = log.read_records(  # type: ignore[attr-defined]
                        offset, max_bytes, max_offset=max_offset, min_one_batch=min_one, next_offset=True)
                    case = (offset, max_bytes, min_one, max_offset)
                    assert _bytes(records) == expected and len(records) == len(expected), case
                    assert following == next_offset_after(expected, offset), case
                    if isinstance(records, FileRecords):
                        regions += 1
                        assert all(len(c) > 0 for c in records.chunks)
                        records.release()
    assert regions > 50


def test_regions_pin_their_files_until_released(open_log: OpenLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_reads, "SENDFILE_MIN_BYTES", 1)
    log = _filled(open_log)
    records, _ = log.read_records(0, 1 << 20)  # type: ignore[attr-defined]
    assert isinstance(records, FileRecords) and all(isinstance(c, FileRegion) for c in records.chunks)
    segments = log.segments  # type: ignore[attr-defined]
    assert all(seg.file.pins == 1 for seg in segments)
    assert _bytes(records) == bytes(log.read(0, 1 << 20))  # type: ignore[attr-defined]
    records.release()
    assert all(seg.file.pins == 0 for seg in segments)


def test_a_bad_batch_stops_the_read_and_is_never_a_region(open_log: OpenLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_reads, "SENDFILE_MIN_BYTES", 1)
    path = _filled(open_log).segments[0].log_path  # type: ignore[attr-defined]
    pos, base = batch_positions(path)[3]
    flip(path, pos + 70)
    log = open_log(**CFG)
    for _ in range(2):  # unchecked, then with the good batches verified by the first read
        records, following = log.read_records(0, 1 << 20, next_offset=True)
        assert len(records) == pos and following == base
        with pytest.raises(CorruptRecordError):
            log.read_records(base, 1 << 20)


def test_a_truncation_below_a_region_stops_it_and_spares_the_rest(open_log: OpenLog,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_reads, "SENDFILE_MIN_BYTES", 1)
    log = _filled(open_log)
    records, _ = log.read_records(0, 1 << 20)  # type: ignore[attr-defined]
    assert isinstance(records, FileRecords)
    regions = [c for c in records.chunks if isinstance(c, FileRegion)]
    segments = log.segments  # type: ignore[attr-defined]
    cut_in = len(segments) - 3  # cut inside this segment: the two after it are deleted
    log.truncate_to(segments[cut_in].base_offset + 1, force=True)  # type: ignore[attr-defined]
    assert [r.intact() for r in regions] == [i < cut_in for i in range(len(regions))]
    assert _bytes(FileRecords(regions[:cut_in])) == bytes(log.read(0, 1 << 20))[:sum(map(len, regions[:cut_in]))]  # type: ignore[attr-defined]
    records.release()
