"""The seed's section 6 ML pipeline (examples/ml-pipeline, issue 18) on one real KRaft node with its
schema registry: every valid simulated event yields exactly one prediction and every broken one a
dead letter; a model trained by replaying `features` beats the majority class on a held-out slice;
replaying a time range gives the same predictions for the same model version; a feature-generator
crashing mid-transaction and restarting yields the same features as a run that never crashed; a
second preprocessor joins the group and the lag goes back to 0."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from suoi.testing import EmbeddedBroker
from suoi.testing.embedded import free_port
from tests.conftest import wait_until
from tests.e2e.test_schema_registry import node as registry_node  # noqa: F401  make run's node, registry on

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ml-pipeline"
sys.path.insert(0, str(EXAMPLE))

from mlpipe.api import run_api  # noqa: E402
from mlpipe.config import Pipeline, create_topics, read_to_end  # noqa: E402
from mlpipe.features import run_feature_generator  # noqa: E402
from mlpipe.ingest import run_ingest  # noqa: E402
from mlpipe.lag import group_lag  # noqa: E402
from mlpipe.model import train  # noqa: E402
from mlpipe.preprocess import preprocessor_stage, run_preprocessors  # noqa: E402
from mlpipe.serve import replay, run_serve  # noqa: E402

START = int(time.time() * 1000) - 120_000  # simulated clock: events 100 ms apart from 2 minutes ago


def _get(url: str) -> object | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


class Stages:
    """Stages running in threads, all stopped (and joined) at the end of a test."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, target: Callable[..., None], *args: object, **kwargs: object) -> None:
        t = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
        t.start()
        self.threads.append(t)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)
            assert not t.is_alive(), "a stage did not stop"


@pytest.fixture
def stages() -> Iterator[Stages]:
    s = Stages()
    yield s
    s.close()


def count(p: Pipeline, topic: str, expected: int, timeout: float = 40) -> list:
    """The committed records of `topic` once there are `expected` of them."""
    return wait_until(lambda: (r := read_to_end(p, topic)) and len(r) >= expected and r, timeout, 0.3,
                      f"{expected} records in {topic}")


def by_event(records: list) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for msg in records:
        value = json.loads(msg.value())
        assert value["event_id"] not in out, f"{value['event_id']} twice in {msg.topic()}"
        out[value["event_id"]] = value
    return out


def test_events_to_predictions_train_replay_and_api(registry_node: tuple[EmbeddedBroker, str],  # noqa: F811
                                                    stages: Stages) -> None:
    p = Pipeline(registry_node[0].bootstrap, registry_node[1], prefix="e2e.")
    assert len(create_topics(p)) == 7
    sim = run_ingest(p, events=800, start_ts=START, invalid_fraction=0.05)
    assert len(sim.invalid) > 10
    stages.start(run_preprocessors, p, stages.stop)
    stages.start(run_feature_generator, p, stages.stop)
    features = by_event(count(p, p.features, len(sim.valid)))
    assert sorted(features) == sorted(sim.valid)

    dead = {}
    for msg in count(p, p.dead_letter, len(sim.invalid)):
        headers = dict(msg.headers())
        dead[msg.offset(), msg.partition()] = headers["error.reason"].decode()
    assert len(dead) == len(sim.invalid)
    reasons = sorted({r.split(" ")[0] for r in dead.values()})
    assert reasons == ["event", "missing", "negative", "unknown"], reasons

    report = train(p)  # replays features from the beginning
    assert (report.version, report.trained_on + report.holdout) == (1, len(sim.valid))
    assert report.accuracy >= report.baseline + 0.15, report  # the stated margin: 15 points

    stages.start(run_serve, p, stages.stop)
    predictions = by_event(count(p, p.predictions, len(sim.valid)))
    assert sorted(predictions) == sorted(sim.valid)  # exactly one per valid event, none for broken ones
    assert {pred["model_version"] for pred in predictions.values()} == {1}

    # replay a time range with the same model version: the same predictions
    ts = sorted(f["ts_ms"] for f in features.values())
    lo, hi = ts[len(ts) // 3], ts[2 * len(ts) // 3]
    replayed = replay(p, 1, lo, hi)
    expected = {e: pred for e, pred in predictions.items() if lo <= pred["ts_ms"] < hi}
    assert len(expected) > 100 and replayed == expected

    port, ready = free_port(), threading.Event()
    stages.start(run_api, p, stages.stop, port=port, ready=ready)
    assert ready.wait(20)
    user = max(sim.preference, key=lambda u: sum(f["user_id"] == u for f in features.values()))
    latest = max((pred for pred in predictions.values() if pred["user_id"] == user), key=lambda x: x["ts_ms"])
    url = f"http://127.0.0.1:{port}/users/{user}/recommendations"
    assert wait_until(lambda: _get(url) == latest, 20, 0.2, "the api's latest recommendations")
    assert latest["recommendations"][0]["category"] == sim.preference[user]  # it learned the taste
    assert group_lag(p, p.name("preprocessors"), p.raw) == 0

    # retrain on the features from a time on (offsets_for_times): a second version, on fewer records
    since = train(p, from_ts=lo)
    assert (since.version, since.trained_on + since.holdout) == (2, sum(t >= lo for t in ts))
    # the running `serve` picks the new version up: later events are predicted by version 2
    later = run_ingest(p, events=40, start_ts=START + 90_000, first_event=800, seed=8)
    after = by_event(count(p, p.predictions, len(sim.valid) + len(later.valid)))
    assert sorted(after) == sorted(sim.valid + later.valid)
    assert {after[e]["model_version"] for e in later.valid} == {2}


def test_a_feature_generator_crashing_mid_transaction_restores_its_state(
        registry_node: tuple[EmbeddedBroker, str], stages: Stages) -> None:  # noqa: F811
    broker, registry = registry_node
    clean, crash = (Pipeline(broker.bootstrap, registry, prefix=prefix) for prefix in ("clean.", "crash."))
    for p in (clean, crash):
        create_topics(p)
        sim = run_ingest(p, events=400, start_ts=START, seed=11)
        stages.start(run_preprocessors, p, stages.stop)
    stages.start(run_feature_generator, clean, stages.stop)
    expected = by_event(count(clean, clean.features, len(sim.valid)))

    # the same stage as a process that dies (os._exit) in its 3rd transaction, after 130 records
    cmd = [sys.executable, str(EXAMPLE / "run.py"), "--bootstrap-server", crash.bootstrap,
           "--schema-registry", crash.registry, "--prefix", crash.prefix,
           "features", "--max-batch", "50", "--crash-after", "130"]
    assert subprocess.run(cmd, capture_output=True, timeout=60).returncode == 17
    committed = len(read_to_end(crash, crash.features))
    assert 0 < committed < len(sim.valid)  # it died mid-stream, with work committed and work open

    stages.start(run_feature_generator, crash, stages.stop)  # restart: fence, restore, go on
    got = by_event(count(crash, crash.features, len(sim.valid)))
    assert got == expected  # nothing lost, nothing counted twice, the same state
    assert len(read_to_end(crash, crash.features)) == len(sim.valid)


def test_a_second_preprocessor_takes_half_the_partitions_and_lag_returns_to_zero(
        registry_node: tuple[EmbeddedBroker, str], stages: Stages) -> None:  # noqa: F811
    p = Pipeline(registry_node[0].bootstrap, registry_node[1], prefix="scale.")
    create_topics(p)
    first, second = preprocessor_stage(p, 0), preprocessor_stage(p, 1)
    stages.start(first.run, stages.stop)
    sent = run_ingest(p, events=200, start_ts=START)
    wait_until(lambda: len(first.assignment) == 10, 30, 0.1, "the first preprocessor owning all 10 partitions")
    stages.start(second.run, stages.stop)
    wait_until(lambda: first.assignment and second.assignment
               and sorted(first.assignment + second.assignment) == list(range(10)), 30, 0.1, "a rebalance")
    more = run_ingest(p, events=200, start_ts=START + 20_000, first_event=200)
    wait_until(lambda: group_lag(p, p.name("preprocessors"), p.raw) == 0, 30, 0.2, "lag 0")
    assert first.processed > 0 and second.processed > 0
    assert first.processed + second.processed == 400
    processed = read_to_end(p, p.processed)
    assert len(processed) == len(sent.valid) + len(more.valid)
