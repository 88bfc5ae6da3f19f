"""4a. MODEL TRAINING (batch): replay `features` from the beginning (or from a timestamp, found with
offsets_for_times), fit scikit-learn's SGDClassifier online with partial_fit, and publish the model as
a new version to the compacted `models` topic (key "recommender@v<N>": compaction keeps every version).

The model learns which category a user turns to next from what was known before (features_before ->
label). A time-ordered holdout slice (the latest 20%) checks it against always guessing the most
common category. The published value is JSON (classes, coefficients, intercepts): serving is a dot
product, the same arithmetic as SGDClassifier.decision_function, with no pickles on the wire."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import numpy as np
from confluent_kafka import Producer
from sklearn.linear_model import SGDClassifier

from .config import CATEGORIES, Pipeline, log, read_to_end
from .features import FEATURE_NAMES

MODEL = "recommender"


@dataclass(frozen=True)
class TrainReport:
    version: int
    trained_on: int
    holdout: int
    accuracy: float
    baseline: float  # accuracy of always predicting the training set's most common label


def matrix(rows: list[dict], key: str) -> np.ndarray:
    return np.array([[r[key][name] for name in FEATURE_NAMES] for r in rows], dtype=float)


def latest_version(p: Pipeline, name: str = MODEL) -> dict | None:
    versions = [json.loads(m.value()) for m in read_to_end(p, p.models) if m.key().decode().startswith(name + "@")]
    return max(versions, key=lambda m: m["version"], default=None)


def get_version(p: Pipeline, version: int, name: str = MODEL) -> dict:
    for msg in read_to_end(p, p.models):
        if msg.key().decode() == f"{name}@v{version}":
            return json.loads(msg.value())
    raise LookupError(f"no {name} version {version} in {p.models}")


def train(p: Pipeline, *, from_ts: int | None = None, holdout_fraction: float = 0.2, epochs: int = 10,
          seed: int = 0) -> TrainReport:
    rows = [json.loads(m.value()) for m in read_to_end(p, p.features, from_ts=from_ts, timeout=60)]
    if len(rows) < 20:
        raise ValueError(f"only {len(rows)} feature records in {p.features}: too few to train")
    rows.sort(key=lambda r: (r["ts_ms"], r["event_id"]))
    cut = int(len(rows) * (1 - holdout_fraction))
    fit, held = rows[:cut], rows[cut:]
    x, y = matrix(fit, "features_before"), np.array([r["label"] for r in fit])
    model = SGDClassifier(loss="log_loss", alpha=1e-3, random_state=seed)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):  # online learning: mini-batches, as a stream would hand them over
        order = rng.permutation(len(fit))
        for start in range(0, len(order), 256):
            batch = order[start:start + 256]
            model.partial_fit(x[batch], y[batch], classes=list(CATEGORIES))
    truth = np.array([r["label"] for r in held])
    accuracy = float((model.predict(matrix(held, "features_before")) == truth).mean())
    majority = Counter(y.tolist()).most_common(1)[0][0]
    baseline = float((truth == majority).mean())
    previous = latest_version(p)
    version = (previous["version"] if previous else 0) + 1
    doc = {"name": MODEL, "version": version, "classes": model.classes_.tolist(), "features": FEATURE_NAMES,
           "coef": model.coef_.tolist(), "intercept": model.intercept_.tolist(),
           "trained": {"records": len(fit), "from_ts": from_ts, "until_ts": fit[-1]["ts_ms"]},
           "holdout": {"records": len(held), "accuracy": accuracy, "baseline": baseline}}
    producer = Producer(p.client())
    producer.produce(p.models, key=f"{MODEL}@v{version}", value=json.dumps(doc))
    if producer.flush(30):
        raise RuntimeError("the model was not published in 30 s")
    log.info("ml-models: trained %s v%d on %d records; holdout accuracy %.3f (majority baseline %.3f)",
             MODEL, version, len(fit), accuracy, baseline)
    return TrainReport(version, len(fit), len(held), accuracy, baseline)


class LoadedModel:
    """A published version, ready to score feature vectors."""

    def __init__(self, doc: dict) -> None:
        self.version = doc["version"]
        self.classes = doc["classes"]
        self.names = doc["features"]
        self.coef, self.intercept = np.array(doc["coef"]), np.array(doc["intercept"])

    def recommend(self, features: dict[str, float], k: int = 3) -> list[dict]:
        x = np.array([features[n] for n in self.names])
        scores = self.coef @ x + self.intercept
        best = np.argsort(-scores, kind="stable")[:k]
        return [{"category": self.classes[i], "score": round(float(scores[i]), 6)} for i in best]
