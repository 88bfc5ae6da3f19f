"""Kafka's KIP-588 rule for the transaction coordinator's error codes.

The machine reports errors as `suoi.model.ErrorCode` values and always reports a fenced
producer as `PRODUCER_FENCED` (90). Clients older than KIP-588 do not know that code:
`for_version(api, version, code)` turns it into `INVALID_PRODUCER_EPOCH` (47) for the
request versions that predate it, as Kafka's request handlers do.
"""

from __future__ import annotations

from suoi.model import ErrorCode

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
    if code == ErrorCode.producer_fenced and version < PRODUCER_FENCED_SINCE.get(api, 0):
        return int(ErrorCode.invalid_producer_epoch)
    return int(code)
