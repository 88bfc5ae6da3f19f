"""Finalized features (KIP-584): bootstrap levels, UpdateFeatures' rules, replay."""

from __future__ import annotations

from suoi.controller.features import FeatureUpdate, UpgradeType
from suoi.controller.records import FeatureLevel
from suoi.model import ErrorCode

from .helpers import Harness

SAFE, UNSAFE = UpgradeType.SAFE_DOWNGRADE, UpgradeType.UNSAFE_DOWNGRADE


def test_bootstrap_writes_metadata_version_once() -> None:
    h = Harness()
    first = h.ctl.bootstrap_features()
    assert first.records == (FeatureLevel(name="metadata.version", level=25),)
    assert h.ctl.bootstrap_features().records == ()
    assert dict(h.replayed().features) == {"metadata.version": 25}
    h.restart_controller()
    assert h.ctl.bootstrap_features().records == ()  # a new controller finds them in the log


def test_metadata_version_downgrades_follow_kafkas_rule() -> None:
    h = Harness()
    h.ctl.bootstrap_features()
    # 24 and 25 did not change the metadata format: a safe downgrade to 23 is allowed...
    ok = h.ctl.update_features([FeatureUpdate("metadata.version", 23, SAFE)])
    assert ok.response.error == ErrorCode.none and ok.records == (FeatureLevel(name="metadata.version", level=23),)
    # ...but 23 did, so going below it might lose metadata, safe or not
    for kind in (SAFE, UNSAFE):
        refused = h.ctl.update_features([FeatureUpdate("metadata.version", 22, kind)])
        assert refused.response.error == ErrorCode.invalid_update_version and refused.records == ()
    assert h.ctl.update_features([FeatureUpdate("metadata.version", 25)]).response.error == ErrorCode.none
    assert dict(h.replayed().features) == {"metadata.version": 25}


def test_updates_are_all_or_nothing_and_validate_only_writes_nothing() -> None:
    h = Harness()
    both = [FeatureUpdate("transaction.version", 1), FeatureUpdate("group.version", 1)]
    r = h.ctl.update_features(both)
    assert r.response.error == ErrorCode.invalid_update_version and "group.version" in (r.response.message or "")
    assert r.records == () and "transaction.version" not in h.image.features
    dry = h.ctl.update_features([FeatureUpdate("transaction.version", 1)], validate_only=True)
    assert dry.response.error == ErrorCode.none and dry.records == ()
    twice = h.ctl.update_features([FeatureUpdate("transaction.version", 1), FeatureUpdate("transaction.version", 1)])
    assert twice.response.error == ErrorCode.invalid_update_version
    unknown_type = h.ctl.update_features([FeatureUpdate("transaction.version", 1, 7)])
    assert "upgrade type" in (unknown_type.response.message or "")
    assert h.ctl.update_features([FeatureUpdate("transaction.version", 1)]).records == (
        FeatureLevel(name="transaction.version", level=1),)
    removed = h.ctl.update_features([FeatureUpdate("transaction.version", -1, SAFE)])  # < 1: remove
    assert removed.records == (FeatureLevel(name="transaction.version", level=0),)
    assert "transaction.version" not in h.replayed().features
