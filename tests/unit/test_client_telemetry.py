"""Client telemetry store (KIP-714), sans-IO: subscriptions, subscription ids, push rules."""

from __future__ import annotations

import pytest

from suoi.client_telemetry import ClientTelemetry, TelemetryError
from suoi.controller.client_metrics import Subscription
from suoi.model import ErrorCode

METRICS_DATA = b"\x0a\x02\x0a\x00"
CLIENT = {"client_id": "app-1", "client_software_name": "librdkafka"}


def test_matching_subscriptions_decide_what_a_client_pushes() -> None:
    store = ClientTelemetry()
    subs = [Subscription.parse("a", {"metrics": "org.apache.kafka.producer.", "interval.ms": "5000",
                                     "match": "client_id=app-.*"}),
            Subscription.parse("b", {"metrics": "org.apache.kafka.consumer.", "interval.ms": "1000",
                                     "match": "client_software_name=java"})]
    first = store.get_subscriptions(None, CLIENT, subs, now_ms=0)
    assert first.metrics == ("org.apache.kafka.producer.",) and first.push_interval_ms == 5000
    assert first.subscriptions == ("a",)
    same = store.get_subscriptions(first.client_instance_id, CLIENT, subs, now_ms=10)
    assert same is first and same.subscription_id == first.subscription_id
    old_id = first.subscription_id
    # the subscription changes: a push with the old subscription id is refused, the client asks again
    changed = [Subscription.parse("a", {"metrics": "*", "interval.ms": "100"})]
    again = store.get_subscriptions(first.client_instance_id, CLIENT, changed, now_ms=20)
    assert again.metrics == ("*",) and again.push_interval_ms == 100 and again.subscription_id != old_id
    with pytest.raises(TelemetryError) as err:
        store.push(first.client_instance_id, old_id, False, 0, METRICS_DATA, now_ms=30)
    assert err.value.code == ErrorCode.unknown_subscription_id
    nothing = store.get_subscriptions(None, CLIENT, [], now_ms=0)
    assert nothing.metrics == () and nothing.push_interval_ms == 300_000


def test_pushes_are_kept_throttled_and_end_with_the_terminating_one() -> None:
    store = ClientTelemetry(max_bytes=100)
    sub = [Subscription.parse("all", {"metrics": "*", "interval.ms": "1000"})]
    inst = store.get_subscriptions(None, CLIENT, sub, now_ms=0)
    iid, sid = inst.client_instance_id, inst.subscription_id
    store.push(iid, sid, False, 0, METRICS_DATA, now_ms=500)  # the first after a Get may come early
    assert (inst.pushes, inst.last_metrics, inst.last_push_ms) == (1, METRICS_DATA, 500)
    errors = []
    for args in [(METRICS_DATA, 0, 900), (METRICS_DATA, 9, 1600), (b"\x0a" * 101, 0, 2700), (b"\xff", 0, 3800)]:
        with pytest.raises(TelemetryError) as err:
            store.push(iid, sid, False, args[1], args[0], now_ms=args[2])
        errors.append(err.value.code)
    assert errors == [ErrorCode.throttling_quota_exceeded, ErrorCode.unsupported_compression_type,
                      ErrorCode.telemetry_too_large, ErrorCode.invalid_record]
    store.push(iid, sid, True, 0, METRICS_DATA, now_ms=3900)  # terminating: never throttled
    assert inst.pushes == 2 and inst.terminating
    with pytest.raises(TelemetryError) as err:
        store.push(iid, sid, False, 0, METRICS_DATA, now_ms=9000)
    assert err.value.code == ErrorCode.invalid_request


def test_the_store_forgets_the_least_recently_seen_instances() -> None:
    store = ClientTelemetry(max_instances=2)
    ids = [store.get_subscriptions(None, CLIENT, [], now_ms=i).client_instance_id for i in range(3)]
    assert [i.client_instance_id for i in store.instances()] == ids[1:]
