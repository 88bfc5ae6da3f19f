from __future__ import annotations

import pytest

from suoi.replication import FollowerPartitionState
from suoi.replication.follower import FetchPosition


def test_truncate_then_fetch_and_learn_hw() -> None:
    f = FollowerPartitionState("t", 0, leader_id=1, leader_epoch=3, partition_epoch=7, log_end_offset=12, high_watermark=10)
    assert f.truncation_needed and f.fetch_position() is None
    f.on_truncated(11)
    assert f.fetch_position() == FetchPosition(11, 3) and f.high_watermark == 10
    assert f.on_fetch_response(leader_high_watermark=20, log_end_offset=15) == 15  # capped at own LEO
    assert f.on_fetch_response(leader_high_watermark=18, log_end_offset=25) == 18
    assert f.fetch_offset == 25


def test_truncation_below_hw_lowers_hw() -> None:
    f = FollowerPartitionState("t", 0, 1, 3, 7, 12, 12)
    f.on_truncated(8)
    assert f.high_watermark == 8


def test_leader_epoch_change_requires_truncation() -> None:
    f = FollowerPartitionState("t", 0, 1, 3, 7, 12)
    f.on_truncated(12)
    assert f.update_registration(1, 3, 8)  # ISR change only
    assert not f.truncation_needed
    assert not f.update_registration(1, 2, 9)  # stale
    assert not f.update_registration(1, 3, 6)  # stale
    assert f.update_registration(2, 4, 9)
    assert f.truncation_needed and f.leader_id == 2 and f.leader_epoch == 4
    with pytest.raises(ValueError):
        f.on_fetch_response(10, 12)
    f.on_truncated(12)
    f.on_diverging_epoch()
    assert f.fetch_position() is None


def test_leo_cannot_go_back_on_fetch() -> None:
    f = FollowerPartitionState("t", 0, 1, 3, 7, 12)
    f.on_truncated(12)
    with pytest.raises(ValueError):
        f.on_fetch_response(10, 11)
