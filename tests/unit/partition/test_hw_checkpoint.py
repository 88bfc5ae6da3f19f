from pathlib import Path

from suoi.partition.hw_checkpoint import read_checkpoint, write_checkpoint


def test_round_trip_in_kafkas_format(tmp_path: Path) -> None:
    path = tmp_path / "replication-offset-checkpoint"
    write_checkpoint(path, {("orders", 1): 42, ("my topic-x", 0): 7})
    assert path.read_text().splitlines()[:2] == ["0", "2"]
    assert read_checkpoint(path) == {("orders", 1): 42, ("my topic-x", 0): 7}


def test_missing_or_malformed_files_read_as_empty(tmp_path: Path) -> None:
    assert read_checkpoint(tmp_path / "absent") == {}
    bad = tmp_path / "bad"
    bad.write_text("1\n1\nt 0 5\n")  # unknown version
    assert read_checkpoint(bad) == {}
    bad.write_text("0\n2\nt 0 5\n")  # fewer lines than the count
    assert read_checkpoint(bad) == {}
    bad.write_text("0\n1\nt zero 5\n")
    assert read_checkpoint(bad) == {}
