"""`suoi.cli.common.retrying`: the tools' loop for retriable errors (issue 11 bugs 7 and 8): it
retries what Kafka's clients retry, stops at the first other error, and gives up at its timeout."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from suoi.cli.common import retrying


def failing(codes: list[int], result: str = "ok"):  # noqa: ANN201
    calls: list[float] = []

    def attempt(left: float) -> str:
        calls.append(left)
        if len(calls) <= len(codes):
            raise KafkaException(KafkaError(codes[len(calls) - 1]))
        return result

    return attempt, calls


def test_retriable_errors_are_retried_until_success() -> None:
    attempt, calls = failing([KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART,
                              KafkaError.NOT_CONTROLLER])
    assert retrying(attempt, timeout=5) == "ok"
    assert len(calls) == 4 and all(0 < left <= 5 for left in calls)
    assert calls == sorted(calls, reverse=True)  # each attempt gets what is left of the timeout


def test_other_errors_fail_at_once() -> None:
    attempt, calls = failing([KafkaError.TOPIC_AUTHORIZATION_FAILED])
    with pytest.raises(KafkaException) as info:
        retrying(attempt, timeout=5)
    assert info.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED and len(calls) == 1


def test_gives_up_with_the_last_error_at_its_timeout() -> None:
    attempt, calls = failing([KafkaError.LEADER_NOT_AVAILABLE] * 1000)
    start = time.monotonic()
    with pytest.raises(KafkaException) as info:
        retrying(attempt, timeout=0.5)
    assert info.value.args[0].code() == KafkaError.LEADER_NOT_AVAILABLE
    assert 0.3 <= time.monotonic() - start < 2.0 and 2 <= len(calls) < 1000
