"""Finalized features (KIP-584): the levels suoi supports and UpdateFeatures' rules.

Finalized levels live in the metadata log as `FeatureLevel` records, so they survive restarts
and are the same on every node; a level of 0 is "not finalized" (absent from the image). The
active controller writes the bootstrap levels (`bootstrap_records`) the first time it leads a
log that has none, as Kafka's `kafka-storage format` does.

Supported ranges are what suoi implements, not what Kafka 4 does:

- ``metadata.version`` 7-25 (3.3-IV3 .. 4.0-IV3), finalized at 25 when bootstrapped. suoi's own
  metadata records do not change with it; downgrades follow Kafka's rule (safe only when no
  level in between changed the metadata format, unsafe refused) so tools see Kafka's answers;
- ``kraft.version`` 0: static voters only (no KIP-853 dynamic quorum);
- ``group.version`` 0: the classic group protocol only (no KIP-848);
- ``transaction.version`` 0-1: level 1 changes only the transaction log's record format in Kafka
  (suoi's is its own); level 2 (KIP-890 part 2: epoch bump per transaction) is not implemented.

UpdateFeatures is all or nothing (Kafka 3.9+): the first invalid update refuses the request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from suoi.controller.messages import ControllerResult
from suoi.controller.records import FeatureLevel
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.controller.context import OperationContext

__all__ = [
    "BOOTSTRAP_LEVELS",
    "METADATA_VERSION",
    "SUPPORTED",
    "FeatureUpdate",
    "FeatureUpdateResult",
    "UpgradeType",
    "bootstrap_records",
    "metadata_version_name",
    "update_features",
]

METADATA_VERSION = "metadata.version"
#: feature -> (min, max) level this node supports.
SUPPORTED: Mapping[str, tuple[int, int]] = {
    METADATA_VERSION: (7, 25),
    "kraft.version": (0, 0),
    "group.version": (0, 0),
    "transaction.version": (0, 1),
}
#: Levels a new metadata log starts with (level 0 features are simply absent).
BOOTSTRAP_LEVELS: Mapping[str, int] = {METADATA_VERSION: 25}

#: metadata.version level -> (release name, did the metadata format change at this level),
#: Kafka's MetadataVersion table for the levels suoi supports.
_MV: Mapping[int, tuple[str, bool]] = {
    7: ("3.3-IV3", True), 8: ("3.4-IV0", True), 9: ("3.5-IV0", False), 10: ("3.5-IV1", False),
    11: ("3.5-IV2", True), 12: ("3.6-IV0", False), 13: ("3.6-IV1", True), 14: ("3.6-IV2", True),
    15: ("3.7-IV0", True), 16: ("3.7-IV1", False), 17: ("3.7-IV2", True), 18: ("3.7-IV3", False),
    19: ("3.7-IV4", False), 20: ("3.8-IV0", False), 21: ("3.9-IV0", False), 22: ("4.0-IV0", False),
    23: ("4.0-IV1", True), 24: ("4.0-IV2", False), 25: ("4.0-IV3", False),
}


def metadata_version_name(level: int) -> str:
    """Kafka's release name of a metadata.version level (kafka-features.sh prints these)."""
    return _MV.get(level, (str(level), False))[0]


class UpgradeType(IntEnum):
    """UpdateFeatures' upgrade_type (v1+); v0's allow_downgrade=true means SAFE_DOWNGRADE."""

    UNKNOWN = 0
    UPGRADE = 1
    SAFE_DOWNGRADE = 2
    UNSAFE_DOWNGRADE = 3


@dataclass(frozen=True, slots=True)
class FeatureUpdate:
    feature: str
    max_version_level: int
    upgrade_type: int = UpgradeType.UPGRADE


@dataclass(frozen=True, slots=True)
class FeatureUpdateResult:
    """One error for the whole request (Kafka answers every feature with it)."""

    error: ErrorCode = ErrorCode.none
    message: str | None = None


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def bootstrap_records(features: Mapping[str, int]) -> list[FeatureLevel]:
    """FeatureLevel records for bootstrap levels a metadata log does not have yet."""
    return [FeatureLevel(name=n, level=lvl) for n, lvl in sorted(BOOTSTRAP_LEVELS.items()) if n not in features]


def update_features(controller: OperationContext, updates: Sequence[FeatureUpdate], validate_only: bool
                    ) -> ControllerResult[FeatureUpdateResult]:
    current = dict(controller.image.features)
    records: list[FeatureLevel] = []
    seen: set[str] = set()
    try:
        for u in updates:
            if u.feature in seen:
                raise _Refused(f"Feature {u.feature} appears more than once in the request.")
            seen.add(u.feature)
            records.append(_check(controller, u, current.get(u.feature, 0)))
    except _Refused as exc:
        return controller.finish(FeatureUpdateResult(ErrorCode.invalid_update_version, exc.message))
    if not validate_only:
        for r in records:
            if current.get(r.name, 0) != r.level:
                controller.stage(r)
    return controller.finish(FeatureUpdateResult())


def _check(controller: OperationContext, u: FeatureUpdate, current: int) -> FeatureLevel:
    new = max(u.max_version_level, 0)  # < 1 asks to remove the feature (level 0)

    def refuse(reason: str) -> _Refused:
        return _Refused(f"Invalid update version {u.max_version_level} for feature {u.feature}. {reason}")

    try:
        kind = UpgradeType(u.upgrade_type)
    except ValueError:
        kind = UpgradeType.UNKNOWN
    if kind == UpgradeType.UNKNOWN:
        raise refuse("The controller does not support the given upgrade type.")
    supported = SUPPORTED.get(u.feature)
    node = controller.config.node_id
    if supported is None or (supported[1] == 0 and new != 0):
        raise refuse(f"Local controller {node} does not support this feature.")
    low, high = supported
    if new != 0 and not low <= new <= high:
        raise refuse(f"Local controller {node} only supports versions {low}-{high}")
    if new < current and kind == UpgradeType.UPGRADE:
        raise refuse("Can't downgrade the version of this feature without setting the upgrade type to "
                     "either safe or unsafe downgrade.")
    if new > current and kind != UpgradeType.UPGRADE:
        raise refuse("Can't downgrade to a newer version.")
    if u.feature == METADATA_VERSION and new < current:
        if new < low:
            raise _Refused(f"Invalid metadata.version {u.max_version_level}. Unable to set a metadata.version "
                           f"less than {metadata_version_name(low)}")
        if any(_MV[level][1] for level in range(new + 1, current + 1) if level in _MV):
            if kind == UpgradeType.UNSAFE_DOWNGRADE:
                raise _Refused(f"Invalid metadata.version {new}. Unsafe metadata downgrade is not supported "
                               "in this version.")
            raise _Refused(f"Invalid metadata.version {new}. Refusing to perform the requested downgrade "
                           "because it might delete metadata information.")
    return FeatureLevel(name=u.feature, level=new)
