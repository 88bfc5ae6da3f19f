"""`make example-ml`: every stage at once on a running node, printing where to look."""

from __future__ import annotations

import threading
import time

from .api import run_api
from .config import Pipeline, create_topics, log, read_to_end
from .features import run_feature_generator
from .ingest import run_ingest
from .lag import group_lag
from .model import train
from .preprocess import run_preprocessors
from .serve import run_serve


def run_demo(p: Pipeline, stop: threading.Event, *, rate: float, warmup: int, instances: int, port: int,
             duration: float | None) -> None:
    create_topics(p)
    threads = [
        threading.Thread(target=run_ingest, kwargs={"p": p, "rate": rate, "stop": stop}, name="ingest"),
        threading.Thread(target=run_preprocessors, args=(p, stop, instances), name="preprocessors"),
        threading.Thread(target=run_feature_generator, args=(p, stop), name="feature-generators"),
    ]
    for t in threads:
        t.start()
    print(f"\ningesting {rate:g} events/s; training once {warmup} feature records exist ...", flush=True)
    deadline = time.monotonic() + (duration or float("inf"))
    while not stop.is_set() and len(read_to_end(p, p.features)) < warmup:
        stop.wait(5)
    if not stop.is_set():
        report = train(p)
        print(f"model v{report.version}: holdout accuracy {report.accuracy:.2f} "
              f"(majority baseline {report.baseline:.2f})", flush=True)
        for target, name in ((run_serve, "ml-models"), (run_api, "api-servers")):
            kwargs = {"port": port} if target is run_api else {}
            t = threading.Thread(target=target, args=(p, stop), kwargs=kwargs, name=name)
            t.start()
            threads.append(t)
        print(f"""
where to look:
  recommendations   curl http://127.0.0.1:{port}/users/user-0001/recommendations
  groups and lag    suoi consumer-groups --bootstrap-server {p.bootstrap} --describe --group {p.name('preprocessors')}
                    (also {p.name('feature-generators')}, {p.name('ml-models')}, {p.name('api-servers')})
  dead letters      suoi console-consumer --bootstrap-server {p.bootstrap} --topic {p.dead_letter} \\
                      --from-beginning --property print.headers=true
  schemas           curl {p.registry}/subjects
  retrain           python examples/ml-pipeline/run.py train   (serve picks the new version up)
  web console       http://127.0.0.1:8080/ (make run's node), or suoi console --bootstrap-server {p.bootstrap}
Ctrl-C stops.""", flush=True)
    while not stop.is_set() and time.monotonic() < deadline:
        stop.wait(10)
        log.info("lag: preprocessors %s, feature-generators %s",
                 group_lag(p, p.name("preprocessors"), p.raw),
                 group_lag(p, p.name("feature-generators"), p.processed))
    stop.set()
    for t in threads:
        t.join()
