"""Finalized features (KIP-584): UpdateFeatures (key 57).

Kafka has no DescribeFeatures request: admin clients read `supported_features`,
`finalized_features` and `finalized_features_epoch` (tagged fields of ApiVersions v3+, made by
`suoi.api.api_versions.feature_fields`) from any node. The levels come from the metadata image
(`FeatureLevel` records, see `suoi.controller.features`); the epoch is the image's offset, as
Kafka's. UpdateFeatures is decided by the active controller (forwarded when this node is not it).
"""

from __future__ import annotations

from typing import Any

from suoi.api.cluster_metadata import forward
from suoi.api.envelope import forwards
from suoi.api.registry import RequestContext, api
from suoi.controller.features import FeatureUpdate, UpgradeType


def _answer(version: int, names: list[str], error: int, message: str | None) -> dict[str, Any]:
    """Kafka's createWithErrors: one error, and before v2 every feature carries it too."""
    results = [{"feature": n, "error_code": error, "error_message": message} for n in names] if version < 2 else []
    return {"throttle_time": 0, "error_code": error, "error_message": message, "results": results}


@api(57, "UpdateFeatures", 0, 2)
async def handle_update_features(ctx: RequestContext, request: Any) -> dict[str, Any]:
    broker = ctx.services
    names = [u.feature for u in request.feature_updates]
    kraft = broker.kraft
    if forwards(kraft):
        return await forward(broker, request)
    updates = [FeatureUpdate(u.feature, int(u.max_version_level), _upgrade_type(u)) for u in request.feature_updates]
    validate_only = bool(getattr(request, "validate_only", False))
    result = await kraft.run_on_controller(lambda c: c.update_features(updates, validate_only=validate_only))
    return _answer(ctx.api_version, names, int(result.error), result.message)


def _upgrade_type(update: Any) -> int:
    if hasattr(update, "upgrade_type"):
        return int(update.upgrade_type)
    return UpgradeType.SAFE_DOWNGRADE if update.allow_downgrade else UpgradeType.UPGRADE
