"""The ML pipeline example's pure parts (examples/ml-pipeline): the preprocessors' rules, the
feature-generators' window, and that the served scores are SGDClassifier's own decision function."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import SGDClassifier

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "ml-pipeline"))

from mlpipe.config import CATEGORIES  # noqa: E402
from mlpipe.features import FEATURE_NAMES, WINDOW, empty_state, feature_vector, update  # noqa: E402
from mlpipe.ingest import UserSimulator  # noqa: E402
from mlpipe.model import LoadedModel  # noqa: E402
from mlpipe.preprocess import clean, problem  # noqa: E402

NOW = 1_800_000_000_000


def event(**changes: object) -> dict:
    ev = {"event_id": "ev-1", "user_id": " user-1 ", "event_type": " CLICK", "item_id": "books-001 ",
          "category": "Books", "price": 10.0, "ts_ms": NOW}
    return {**ev, **changes}


def test_preprocessors_clean_then_name_the_first_broken_rule() -> None:
    assert clean(event()) == {**event(), "user_id": "user-1", "event_type": "click", "item_id": "books-001",
                              "category": "books"}
    assert problem(clean(event()), NOW) is None
    cases = {"missing user_id": event(user_id=" "), "unknown event_type 'hover'": event(event_type="hover"),
             "unknown category 'weapons'": event(category="weapons"), "negative price -3.0": event(price=-3.0),
             "event time more than a day in the future": event(ts_ms=NOW + 2 * 86_400_000)}
    for reason, ev in cases.items():
        assert problem(clean(ev), NOW) == reason


def test_features_weigh_event_types_over_a_window_of_the_last_events() -> None:
    state = empty_state()
    assert feature_vector(state, NOW)["recency_h"] == 1.0  # never seen: as old as it gets
    state = update(state, {"category": "books", "event_type": "purchase", "ts_ms": NOW})
    state = update(state, {"category": "home", "event_type": "view", "ts_ms": NOW + 1800_000})
    f = feature_vector(state, NOW + 3600_000)
    assert (f["affinity_books"], f["affinity_home"], f["affinity_sports"]) == (round(5 / 6, 6), round(1 / 6, 6), 0)
    assert f["recency_h"] == round(0.5 / 24, 6) and f["window_fill"] == 2 / WINDOW
    assert list(f) == FEATURE_NAMES
    for i in range(WINDOW):
        state = update(state, {"category": "sports", "event_type": "view", "ts_ms": NOW + i})
    assert feature_vector(state, NOW)["affinity_sports"] == 1.0 and state["events"] == WINDOW + 2


def test_served_scores_are_the_classifiers_decision_function() -> None:
    sim, rng = UserSimulator(users=20, seed=3, invalid_fraction=0), np.random.default_rng(0)
    x = rng.random((200, len(FEATURE_NAMES)))
    y = np.array([sim.category(sim.users[i % 20]) for i in range(200)])
    model = SGDClassifier(loss="log_loss", random_state=0).partial_fit(x, y, classes=list(CATEGORIES))
    served = LoadedModel({"version": 1, "classes": model.classes_.tolist(), "features": FEATURE_NAMES,
                          "coef": model.coef_.tolist(), "intercept": model.intercept_.tolist()})
    for row in x[:20]:
        recs = served.recommend(dict(zip(FEATURE_NAMES, row, strict=True)), k=len(CATEGORIES))
        decision = model.decision_function(row.reshape(1, -1))[0]
        assert recs[0]["category"] == model.predict(row.reshape(1, -1))[0]
        assert [r["score"] for r in recs] == sorted((round(float(d), 6) for d in decision), reverse=True)
