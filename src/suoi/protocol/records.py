"""Sans-IO handling of Kafka v2 record batches (magic 2).

The broker treats produced data as opaque batches: on the hot path it only
parses the fixed 61-byte batch header, checks the CRC32C and rewrites the
base offset (and, for ``LogAppendTime`` topics, the max timestamp).  Individual
records are never decoded there - that would cost a Python loop per record.

The batch layout (the 61-byte header, what the CRC covers) is described in
``record_batch``.

A small record encoder/decoder (``build_batch``, ``iter_records``,
``decode_batch_records``; any codec via ``compression``) serves tests, the
broker's internal topics and the log cleaner.

This module is the public face of both layers: the batch level lives in
``record_batch`` (header, CRC, validation, in-place rewrites) and the record level
in ``record_codec`` (records, control records); every name is re-exported here.
"""

from __future__ import annotations

from suoi.protocol.record_batch import (
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC_OFFSET,
    BatchHeader,
    CorruptRecordError,
    InvalidRecordError,
    RecordTooLargeError,
    RecordValidationError,
    UnsupportedForMessageFormatError,
    assign_offsets,
    iter_batches,
    parse_batch_header,
    set_log_append_time,
    validate_batches,
    verify_crc,
)
from suoi.protocol.record_codec import (
    CONTROL_ABORT,
    CONTROL_COMMIT,
    EndTxnMarker,
    SimpleRecord,
    build_batch,
    build_control_batch,
    control_record_type,
    decode_batch_records,
    decode_end_txn_marker,
    iter_records,
    key_value_prefixes,
)

__all__ = [
    "CONTROL_ABORT",
    "CONTROL_COMMIT",
    "HEADER_SIZE",
    "LOG_OVERHEAD",
    "MAGIC_OFFSET",
    "BatchHeader",
    "CorruptRecordError",
    "EndTxnMarker",
    "InvalidRecordError",
    "RecordTooLargeError",
    "RecordValidationError",
    "SimpleRecord",
    "UnsupportedForMessageFormatError",
    "assign_offsets",
    "build_batch",
    "build_control_batch",
    "control_record_type",
    "decode_batch_records",
    "decode_end_txn_marker",
    "iter_batches",
    "iter_records",
    "key_value_prefixes",
    "parse_batch_header",
    "set_log_append_time",
    "validate_batches",
    "verify_crc",
]
