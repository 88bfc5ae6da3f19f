"""`check_schema_ids` (sans-IO): Confluent's wire format checked record by record, in compressed
batches too, against the registered ids of the topic's subjects; the registry's absence and its
replay still running give their own answers."""

from __future__ import annotations

import pytest

from suoi.model import ErrorCode
from suoi.partition.schema_validation import check_schema_ids
from suoi.protocol.records import build_batch, build_control_batch, iter_batches, iter_records, key_value_prefixes


class Registry:
    """A replayed registry's answer: subject -> live ids (None: not ready)."""

    def __init__(self, ids: dict[str, frozenset[int]] | None) -> None:
        self.ids = ids

    def registered_ids(self, subject: str) -> frozenset[int] | None:
        return None if self.ids is None else self.ids.get(subject, frozenset())


REGISTRY = Registry({"t-value": frozenset({3}), "t-key": frozenset({4}), "u-value": frozenset({5})})


def framed(schema_id: int, payload: bytes = b"\x02x") -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + payload


@pytest.mark.parametrize("codec", [0, 1, 4])  # none, gzip, zstd: compressed batches are decompressed
def test_every_record_of_every_batch_is_checked(codec: int) -> None:
    good = build_batch([(None, framed(3)), (b"free key", framed(3)), (None, None)], compression=codec)
    assert check_schema_ids(good, "t", False, True, REGISTRY) is None
    bad = build_batch([(None, framed(3)), (None, framed(5))], compression=codec)
    error, message = check_schema_ids(good + bad, "t", False, True, REGISTRY) or (None, "")
    assert error == ErrorCode.invalid_record
    assert message == "schema id validation: record 1: value has schema id 5, not registered under subject t-value"


@pytest.mark.parametrize("value", [b"", b"\x00\x00\x00", b"\x01" + framed(3)[1:], b"plain text"])
def test_values_without_the_wire_format_are_refused(value: bytes) -> None:
    refused = check_schema_ids(build_batch([(None, value)]), "t", False, True, REGISTRY)
    assert refused == (ErrorCode.invalid_record,
                       "schema id validation: record 0: value does not start with magic byte 0 and a 4-byte schema id")


def test_keys_and_values_are_checked_against_their_own_subjects() -> None:
    assert check_schema_ids(build_batch([(framed(4), framed(3))]), "t", True, True, REGISTRY) is None
    refused = check_schema_ids(build_batch([(framed(3), framed(3))]), "t", True, True, REGISTRY)
    assert refused is not None and "key has schema id 3, not registered under subject t-key" in refused[1]


def test_control_batches_are_not_records() -> None:
    marker = build_control_batch(producer_id=1, producer_epoch=0, commit=True, coordinator_epoch=0, timestamp_ms=0)
    assert check_schema_ids(marker, "t", True, True, REGISTRY) is None


def test_no_registry_and_a_registry_still_replaying() -> None:
    batch = build_batch([(None, framed(3))])
    error, message = check_schema_ids(batch, "t", False, True, None) or (None, "")
    assert error == ErrorCode.invalid_record and "runs no schema registry (schema.registry.listeners)" in message
    error, _message = check_schema_ids(batch, "t", False, True, Registry(None)) or (None, "")
    assert error == ErrorCode.request_timed_out  # retriable: producers try again once the replay is done


def test_a_broken_records_section_is_refused_in_one_line() -> None:
    batch = bytearray(build_batch([(None, framed(3))], compression=1))
    batch[-4:] = b"\xff\xff\xff\xff"  # the gzip stream's tail
    error, message = check_schema_ids(bytes(batch), "t", False, True, REGISTRY) or (None, "")
    assert error == ErrorCode.invalid_record and message.startswith("records cannot be decoded")


@pytest.mark.parametrize("codec", [0, 1, 4])
def test_key_value_prefixes_agree_with_the_full_decoder(codec: int) -> None:
    records = [(None, framed(3)), (b"kk", b""), (b"\x00" * 300, None), (b"\x00\x00\x00\x00\x07", b"v" * 200)] * 9
    batch = build_batch(records, compression=codec)
    [(pos, header)] = list(iter_batches(batch))
    expected = [(None if r.key is None else r.key[:5], None if r.value is None else r.value[:5])
                for r in iter_records(batch)]
    assert key_value_prefixes(batch, pos, header, 5) == expected
