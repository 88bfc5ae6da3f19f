"""Kafka error codes used by the transaction coordinator state machine.

Plain ints (no kio import here); the values are Kafka's own and a unit test checks them
against kio's `ErrorCode`, so the API layer can pass them through as is.

The machine always reports a fenced producer as `PRODUCER_FENCED` (90). Clients older
than KIP-588 do not know that code: `for_version(api, version, code)` turns it into
`INVALID_PRODUCER_EPOCH` (47) for the request versions that predate it, as Kafka's
request handlers do.
"""

from __future__ import annotations

from enum import IntEnum


class Err(IntEnum):
    NONE = 0
    COORDINATOR_LOAD_IN_PROGRESS = 14
    COORDINATOR_NOT_AVAILABLE = 15
    NOT_COORDINATOR = 16
    INVALID_REQUEST = 42
    INVALID_PRODUCER_EPOCH = 47
    INVALID_TXN_STATE = 48
    INVALID_PRODUCER_ID_MAPPING = 49
    INVALID_TRANSACTION_TIMEOUT = 50
    CONCURRENT_TRANSACTIONS = 51
    PRODUCER_FENCED = 90
    TRANSACTIONAL_ID_NOT_FOUND = 105


# First request version that may carry PRODUCER_FENCED (KIP-588); older ones get INVALID_PRODUCER_EPOCH.
PRODUCER_FENCED_SINCE: dict[str, int] = {
    "InitProducerId": 4,
    "AddPartitionsToTxn": 2,
    "AddOffsetsToTxn": 2,
    "EndTxn": 2,
    "TxnOffsetCommit": 3,
}


def for_version(api: str, version: int, code: int) -> int:
    """The code to put in a response of `api` at `version` (maps PRODUCER_FENCED for old clients)."""
    if code == Err.PRODUCER_FENCED and version < PRODUCER_FENCED_SINCE.get(api, 0):
        return int(Err.INVALID_PRODUCER_EPOCH)
    return int(code)
