"""Dependencies point one way (ARCHITECTURE.md): lower layers never import higher ones.

Checked statically from each module's import statements (type-only imports, imports inside
functions and relative imports included), so a violation fails here before it becomes a
cycle somewhere else. A "package" is a sub-package of suoi or a top-level module
(`suoi.broker`, `suoi.services`, `suoi.node`, ...).
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[3] / "src" / "suoi"

# package -> suoi packages it must not import
FORBIDDEN = {
    # the atomic replacement of state files: a leaf every layer that keeps a file may use
    "atomic_file": {"configdefs", "model", "protocol", "log", "raft", "raft_driver", "client", "replication",
                    "controller", "api", "net", "broker", "coordinator", "cluster", "partition", "cli", "testing",
                    "config", "dynamic_config", "services", "node", "http", "quota", "authorizer", "security"},
    # Kafka's config table: facts every layer reads, so it depends on none of them
    "configdefs": {"model", "protocol", "log", "raft", "raft_driver", "client", "replication", "controller", "api",
                   "net", "broker", "coordinator", "cluster", "cli", "testing", "config", "dynamic_config"},
    "model": {"protocol", "log", "api", "net", "broker", "coordinator", "cli", "testing"},
    "protocol": {"log", "api", "net", "broker", "coordinator", "cli", "testing"},
    "log": {"api", "net", "broker", "coordinator", "cli", "testing"},
    "coordinator": {"api", "net", "cli", "testing"},
    # handlers: decode -> call suoi.services -> encode; the listener calls them, never the reverse
    "api": {"net", "broker", "cli", "testing", "http"},
    "raft": {"protocol", "log", "api", "net", "broker", "coordinator", "cli", "testing"},
    "raft_driver": {"log", "api", "net", "broker", "coordinator", "controller", "cli", "testing"},
    "client": {"log", "raft", "raft_driver", "api", "net", "broker", "coordinator", "controller", "cli", "testing"},
    "controller": {"raft_driver", "client", "api", "net", "broker", "coordinator", "cli", "testing"},
    "replication": {"api", "net", "cli", "testing", "broker", "cluster", "partition"},
    # the listener moves bytes and dispatches to api; it reaches the node only through suoi.services
    "net": {"broker", "cluster", "partition", "coordinator", "log", "replication", "controller", "raft", "cli",
            "testing", "http"},
    # runtimes below the handlers: built by the composition root with a suoi.node.Node
    "cluster": {"api", "net", "broker", "services", "cli", "testing", "http"},
    "partition": {"api", "net", "broker", "services", "cli", "testing", "http"},
    # the interfaces: what runtimes are built with (node) and what handlers may call (services)
    "node": {"api", "net", "broker", "services", "cluster", "partition", "cli", "testing", "http"},
    "services": {"api", "net", "broker", "cli", "testing", "http"},
    # ACL rules and the authorizer: pure facts the controller (records) and api (enforcement) share
    "quota": {"protocol", "log", "raft", "raft_driver", "client", "replication", "controller", "api", "net",
              "broker", "coordinator", "cluster", "cli", "testing", "config", "authorizer"},
    "authorizer": {"protocol", "log", "raft", "raft_driver", "client", "replication", "controller", "api", "net",
                   "broker", "coordinator", "cluster", "cli", "testing", "config"},
}
#: packages a rule names that need not exist yet (issue 12's Partition layer)
PLANNED = {"partition"}
#: suoi packages each of these may import, and no other (its own modules are always allowed)
ALLOWED_ONLY = {
    # the node's HTTP apps (metrics, schema registry, console) talk to the node through
    # suoi.services or over the wire through suoi.client, never to its internals
    "http": {"services", "client", "model", "protocol", "configdefs", "metrics_recorder"},
}
#: modules a package must not import even where their package is allowed: handlers reach the
#: KRaft runtime through suoi.services (its KRaft protocol), not by its class
FORBIDDEN_MODULES = {"api": {"suoi.cluster.kraft"}, "net": {"suoi.cluster.kraft"}}
#: the composition root: imported only by the process entry point and the test harness
ROOT = "broker"
ROOT_IMPORTERS = {"cli/broker.py", "testing"}
NO_ASYNCIO = {"atomic_file", "configdefs", "model", "protocol", "log", "raft", "controller", "replication", "authorizer", "quota"}
# sans-IO packages that must not even touch kio, sockets, threads or the clock
PURE = {
    "controller": {"kio", "socket", "threading", "time", "selectors"},
    "replication": {"kio", "socket", "threading", "time", "selectors"},
    "authorizer": {"kio", "socket", "threading", "time", "selectors"},
    "quota": {"kio", "socket", "threading", "time", "selectors"},
}


def package_of(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return rel[0] if len(rel) > 1 else rel[0].removesuffix(".py")


def files_of(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py")) if (SRC / package).is_dir() else \
        [p for p in [SRC / f"{package}.py"] if p.exists()]


@functools.cache
def imported_modules(path: Path) -> frozenset[str]:
    """Absolute names of everything `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = ("suoi", *path.relative_to(SRC).with_suffix("").parts)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module:
                    names.add(node.module)
                continue
            base = here[:-node.level] if path.name != "__init__.py" else here[:len(here) - node.level]
            if node.module:
                names.add(".".join((*base, node.module)))
            else:
                names.update(".".join((*base, alias.name)) for alias in node.names)
    return frozenset(names)


def suoi_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "suoi" and len(parts) > 1 else None


def import_graph() -> dict[str, dict[str, set[str]]]:
    """package -> imported package -> the files that import it."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in sorted(SRC.rglob("*.py")):
        src = package_of(path)
        for name in imported_modules(path):
            dst = suoi_package(name)
            if dst is not None and dst != src and dst != "__init__":
                graph[src][dst].add(str(path.relative_to(SRC)))
    return graph


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_one_way(package: str) -> None:
    files = files_of(package)
    assert files or package in PLANNED, f"no modules found for {package}"
    violations = []
    for path in files:
        for name in imported_modules(path):
            if suoi_package(name) in FORBIDDEN[package] or name in FORBIDDEN_MODULES.get(package, ()):
                violations.append(f"{path.relative_to(SRC)} imports {name}")
            if package in NO_ASYNCIO and name.split(".")[0] == "asyncio":
                violations.append(f"{path.relative_to(SRC)} imports asyncio (sans-IO layer)")
    assert violations == []


@pytest.mark.parametrize("package", sorted(ALLOWED_ONLY))
def test_package_imports_only_what_it_may(package: str) -> None:
    assert (SRC / package).is_dir(), f"no package {package}"
    allowed = ALLOWED_ONLY[package] | {package}
    violations = [f"{path.relative_to(SRC)} imports {name}"
                  for path in files_of(package) for name in imported_modules(path)
                  if suoi_package(name) not in (None, *allowed)]
    assert violations == []


def test_only_the_entry_point_and_the_harness_import_the_composition_root() -> None:
    files = sorted(f for deps in import_graph().values() for f in deps.get(ROOT, ()))
    assert [f for f in files if f not in ROOT_IMPORTERS and f.split("/")[0] not in ROOT_IMPORTERS] == []


def _rings(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """Strongly connected components of more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    rings: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            ring = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                ring.append(w)
                if w == v:
                    break
            if len(ring) > 1:
                rings.append(sorted(ring))

    for v in sorted(set(graph) | {w for deps in graph.values() for w in deps}):
        if v not in index:
            visit(v)
    return rings


def test_no_import_ring_across_packages() -> None:
    """Type-only imports count: a ring of annotations is still a ring of knowledge."""
    graph = import_graph()
    described = [f"{a} -> {b} ({', '.join(sorted(graph[a][b]))})"
                 for ring in _rings(graph) for a in ring for b in ring if b in graph.get(a, {})]
    assert described == []


def test_ring_detection_finds_a_ring() -> None:
    graph = {"api": {"broker": {"api/x.py"}}, "broker": {"net": {"broker.py"}}, "net": {"api": {"net/s.py"}},
             "model": {}}
    assert _rings(graph) == [["api", "broker", "net"]]


@pytest.mark.parametrize("package", sorted(PURE))
def test_pure_packages_import_no_io(package: str) -> None:
    violations = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in files_of(package)
        for name in imported_modules(path)
        if name.split(".")[0] in PURE[package]
    ]
    assert violations == []
