"""The pipeline's command line: one sub-command per stage (see README.md), plus `demo` for all of them.

    python examples/ml-pipeline/run.py setup
    python examples/ml-pipeline/run.py ingest --rate 50
    python examples/ml-pipeline/run.py preprocess --instances 3
    python examples/ml-pipeline/run.py features
    python examples/ml-pipeline/run.py train [--from-ts MS]
    python examples/ml-pipeline/run.py serve [--model-version N]
    python examples/ml-pipeline/run.py api --port 8088
    python examples/ml-pipeline/run.py replay --model-version 1 --from-ts MS --until-ts MS
    python examples/ml-pipeline/run.py lag --group preprocessors --topic raw-user-events
    python examples/ml-pipeline/run.py demo
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlpipe.api import run_api  # noqa: E402
from mlpipe.config import Pipeline, create_topics  # noqa: E402
from mlpipe.demo import run_demo  # noqa: E402
from mlpipe.features import run_feature_generator  # noqa: E402
from mlpipe.ingest import run_ingest  # noqa: E402
from mlpipe.lag import group_lag  # noqa: E402
from mlpipe.model import train  # noqa: E402
from mlpipe.preprocess import run_preprocessors  # noqa: E402
from mlpipe.serve import replay, run_serve  # noqa: E402


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap-server", default="127.0.0.1:9092")
    ap.add_argument("--schema-registry", default="http://127.0.0.1:8081")
    ap.add_argument("--prefix", default="", help="prefix of every topic and group name")
    sub = ap.add_subparsers(dest="stage", required=True)
    sub.add_parser("setup", help="create the topics with the seed's settings")
    ing = sub.add_parser("ingest", help="simulate users")
    ing.add_argument("--events", type=int, help="stop after this many (default: run until Ctrl-C)")
    ing.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    ing.add_argument("--users", type=int, default=50)
    ing.add_argument("--seed", type=int, default=7)
    ing.add_argument("--start-ts", type=int, help="simulated clock start, ms (without --rate)")
    pre = sub.add_parser("preprocess", help="consumer group preprocessors")
    pre.add_argument("--instances", type=int, default=1)
    pre.add_argument("--first-instance", type=int, default=0, help="when scaling out with another process")
    fea = sub.add_parser("features", help="consumer group feature-generators")
    fea.add_argument("--instance", type=int, default=0)
    fea.add_argument("--max-batch", type=int, default=200, help="records per transaction at most")
    fea.add_argument("--crash-after", type=int, help="exit mid-transaction after N records (a crash test)")
    tr = sub.add_parser("train", help="replay features, fit, publish a model version")
    tr.add_argument("--from-ts", type=int, help="replay from this time (ms) instead of the beginning")
    srv = sub.add_parser("serve", help="consumer group ml-models")
    srv.add_argument("--instance", type=int, default=0)
    srv.add_argument("--model-version", type=int, help="pin a version (default: latest, and follow new ones)")
    api = sub.add_parser("api", help="consumer group api-servers behind an HTTP endpoint")
    api.add_argument("--port", type=int, default=8088)
    rep = sub.add_parser("replay", help="predictions of a model version over a time range of features")
    rep.add_argument("--model-version", type=int, required=True)
    rep.add_argument("--from-ts", type=int, required=True)
    rep.add_argument("--until-ts", type=int, required=True)
    lag = sub.add_parser("lag", help="a consumer group's lag on a topic")
    lag.add_argument("--group", required=True)
    lag.add_argument("--topic", required=True)
    demo = sub.add_parser("demo", help="every stage at once, printing where to look")
    demo.add_argument("--rate", type=float, default=50.0)
    demo.add_argument("--warmup-events", type=int, default=1500, help="features to train the first model on")
    demo.add_argument("--instances", type=int, default=2, help="preprocessor instances")
    demo.add_argument("--port", type=int, default=8088)
    demo.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the registry client logs every request
    p = Pipeline(args.bootstrap_server, args.schema_registry, args.prefix)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.stage == "setup":
        create_topics(p)
    elif args.stage == "ingest":
        run_ingest(p, events=args.events, rate=args.rate, users=args.users, seed=args.seed,
                   start_ts=args.start_ts, stop=stop)
    elif args.stage == "preprocess":
        run_preprocessors(p, stop, args.instances, args.first_instance)
    elif args.stage == "features":
        run_feature_generator(p, stop, args.instance, args.crash_after, args.max_batch)
    elif args.stage == "train":
        print(json.dumps(train(p, from_ts=args.from_ts).__dict__))
    elif args.stage == "serve":
        run_serve(p, stop, args.instance, args.model_version)
    elif args.stage == "api":
        run_api(p, stop, port=args.port)
    elif args.stage == "replay":
        for pred in replay(p, args.model_version, args.from_ts, args.until_ts).values():
            print(json.dumps(pred))
    elif args.stage == "lag":
        print(group_lag(p, p.name(args.group), p.name(args.topic)))
    else:
        run_demo(p, stop, rate=args.rate, warmup=args.warmup_events, instances=args.instances,
                 port=args.port, duration=args.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
