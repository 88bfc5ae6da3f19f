"""The rate sampler (Kafka's Rate and throttle time) and quota precedence (KIP-55)."""

from __future__ import annotations

from suoi.quota import ClientQuotas, Rate, quota_for


def test_rate_counts_at_least_num_samples_minus_one_windows() -> None:
    r = Rate(num_samples=11, window_ms=1000)
    r.record(10_000, now_ms=0)
    assert r.window_size_ms(0) == 10_000  # a first burst is measured over the whole window
    assert r.rate(0) == 1000.0
    assert r.throttle_ms(2000.0, 0) == 0
    # 30,000 bytes over 10.5 s (0.5 s elapsed + 10 windows) against 1000/s: silent until the rate is
    # back at the quota, (30000/10.5 - 1000) / 1000 * 10.5 s = 19.5 s
    r.record(20_000, now_ms=500)
    assert r.window_size_ms(500) == 10_500
    assert r.throttle_ms(1000.0, 500) == 19_500


def test_old_samples_expire() -> None:
    r = Rate(num_samples=2, window_ms=1000)
    r.record(5000, now_ms=0)
    assert r.rate(500) == 5000 / 1.5  # 0.5 s elapsed + one full window
    r.record(1000, now_ms=2500)  # the first window is gone
    assert r.rate(2500) == 1000.0


def test_quota_precedence_and_shared_sensors() -> None:
    quotas = {
        (("client-id", "app"), ("user", "alice")): {"producer_byte_rate": 1.0},
        (("user", "alice"),): {"producer_byte_rate": 2.0, "consumer_byte_rate": 20.0},
        (("user", None),): {"producer_byte_rate": 3.0},
        (("client-id", None),): {"request_percentage": 50.0},
    }
    assert quota_for(quotas, "producer_byte_rate", "alice", "app") == (1.0, ("alice", "app"))
    assert quota_for(quotas, "producer_byte_rate", "alice", "other") == (2.0, ("alice", ""))  # per user
    assert quota_for(quotas, "producer_byte_rate", "bob", "x") == (3.0, ("bob", ""))  # default user, own sensor
    assert quota_for(quotas, "request_percentage", "bob", "x") == (50.0, ("", "x"))
    assert quota_for(quotas, "consumer_byte_rate", "bob", "x") is None
    m = ClientQuotas(num_samples=2, window_ms=1000)
    assert m.record(quotas, "consumer_byte_rate", "alice", "a", 10.0, 0) == 0
    # the same sensor for every client of alice: 10 + 30 bytes in a 1 s window against 20/s
    assert m.record(quotas, "consumer_byte_rate", "alice", "b", 30.0, 0) == 1000
    assert m.record(quotas, "consumer_byte_rate", "bob", "b", 1e9, 0) == 0  # no quota applies


def test_the_applicable_quota_is_remembered_per_quotas_mapping() -> None:
    """Each request of a client asks which quota applies; the answer is remembered while the
    quotas are the same mapping (an image's), and asked again of a new one (the quotas changed)."""
    m = ClientQuotas(num_samples=2, window_ms=1000)
    first = {(("user", "alice"),): {"producer_byte_rate": 2.0}}
    assert m.applicable(first, "producer_byte_rate", "alice", "a") == (2.0, ("alice", ""))
    assert m.applicable(first, "producer_byte_rate", "bob", "a") is None
    assert m.applicable(first, "producer_byte_rate", "bob", "a") is None  # a remembered "none applies"
    second = {(("user", None),): {"producer_byte_rate": 5.0}}  # the next image: a default-user quota
    assert m.applicable(second, "producer_byte_rate", "bob", "a") == (5.0, ("bob", ""))
    assert m.applicable(second, "producer_byte_rate", "alice", "a") == (5.0, ("alice", ""))
    assert m.record(second, "producer_byte_rate", "bob", "a", 20.0, 0) > 0  # over 5 B/s: throttled
    assert m.record({}, "producer_byte_rate", "bob", "a", 1e9, 0) == 0  # quotas removed: none applies


def test_connection_limits() -> None:
    from suoi.quota import Admission, ConnectionLimits, parse_overrides

    ok = Admission()
    limits = ConnectionLimits(max_connections=3, max_per_ip=2, overrides=parse_overrides("10.0.0.9:0, 10.0.0.8:5"))
    assert limits.admit("a") == ok and limits.admit("a") == ok
    assert limits.admit("a") == Admission("Too many connections from a (maximum = 2)")
    assert limits.admit("10.0.0.9").reason is not None  # override: none at all
    assert limits.admit("b") == ok
    assert "max.connections = 3" in str(limits.admit("10.0.0.8").reason)
    assert limits.admit("10.0.0.8", counted=False) == ok  # a controller listener: only the per-IP limit
    limits.release("a")
    assert limits.admit("a") == ok
    assert parse_overrides("") == {}


def test_listener_limits_and_connection_creation_rates() -> None:
    """KIP-612 with 2 windows of 1 s: a rate of 2/s admits 2 connections in the first second at once
    (counted over at least one full window), then makes each wait (listener/broker) or refuses
    it and closes it after the throttle time (an IP's connection_creation_rate)."""
    from suoi.quota import ConnectionLimits, listener_connection_limits

    counts, rates = listener_connection_limits({"listener.name.external.max.connections": "1",
                                                "listener.name.internal.max.connection.creation.rate": "2",
                                                "max.connections": "9"})
    assert (counts, rates) == ({"EXTERNAL": 1}, {"INTERNAL": 2})
    limits = ConnectionLimits(listener_max=counts, listener_rate=rates, num_samples=2, window_ms=1000,
                              ip_rate=lambda ip: 1.0 if ip == "slow" else None)
    assert limits.admit("x", "EXTERNAL").reason is None
    assert limits.admit("y", "EXTERNAL").reason == "Too many connections on listener EXTERNAL (max.connections = 1)"
    limits.release("x", "EXTERNAL")
    assert limits.admit("y", "EXTERNAL").reason is None
    assert [limits.admit("z", "INTERNAL", 0).delay_ms for _ in range(3)] == [0, 0, 500]  # (3/1 s - 2) / 2 * 1 s
    limits.max_creation_rate = 1  # broker-wide, except the inter-broker listener
    assert limits.admit("w", "OTHER", 0).delay_ms == 0
    assert limits.admit("w", "OTHER", 0).delay_ms == 1000
    assert limits.admit("w", "INTER", 0, broker_rate=False).delay_ms == 0
    # an IP over its quota: refused (and not counted), closed after the throttle time
    assert limits.admit("slow", "OTHER", 0, broker_rate=False).reason is None
    refused = limits.admit("slow", "OTHER", 0, broker_rate=False)
    assert refused.reason is not None and "connection_creation_rate" in refused.reason and refused.delay_ms == 1000
    assert limits.admit("slow", "OTHER", 2000, broker_rate=False).reason is None  # the window has passed


def test_token_bucket_controller_mutations_strict_and_permissive() -> None:
    """KIP-599: a burst of quota * windows tokens, refilled at the quota; strict refuses only
    once the bucket is below zero (one request may go over), permissive always admits and throttles."""
    quotas = {(("client-id", "admin"),): {"controller_mutation_rate": 2.0}}
    q = ClientQuotas(num_samples=2, window_ms=1000)  # burst: 2/s * 2 s = 4 partitions
    assert q.record_mutations(quotas, "u", "admin", 3, 0, strict=True) == (True, 0)  # 1 token left
    assert q.record_mutations(quotas, "u", "admin", 3, 0, strict=True) == (True, 0)  # -2: over, but admitted
    assert q.record_mutations(quotas, "u", "admin", 1, 0, strict=True) == (False, 1000)  # 2 tokens / 2 per s
    assert q.record_mutations(quotas, "u", "admin", 1, 500, strict=True) == (False, 500)  # refilled by 1
    assert q.record_mutations(quotas, "u", "admin", 1, 1000, strict=True) == (True, 0)  # back at 0: admitted
    assert q.record_mutations(quotas, "u", "admin", 5, 1000, strict=False) == (True, 3000)  # -6 -> 3 s
    assert q.record_mutations(quotas, "u", "other", 50, 1000, strict=True) == (True, 0)  # no quota for it
