"""Dependencies point one way (ARCHITECTURE.md): lower layers never import higher ones.

Checked statically from each module's import statements, so a violation fails here
before it becomes a cycle somewhere else.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[3] / "src" / "suoi"

# package -> suoi packages it must not import
FORBIDDEN = {
    # Kafka's config table: facts every layer reads, so it depends on none of them
    "configdefs": {"model", "protocol", "log", "raft", "raft_driver", "client", "replication", "controller", "api",
                   "net", "broker", "coordinator", "cluster", "cli", "testing", "config", "dynamic_config"},
    "model": {"protocol", "log", "api", "net", "broker", "coordinator", "cli", "testing"},
    "protocol": {"log", "api", "net", "broker", "coordinator", "cli", "testing"},
    "log": {"api", "net", "broker", "coordinator", "cli", "testing"},
    "coordinator": {"api", "net", "cli", "testing"},
    "api": {"net", "cli", "testing"},
    "raft": {"protocol", "log", "api", "net", "broker", "coordinator", "cli", "testing"},
    "raft_driver": {"log", "api", "net", "broker", "coordinator", "controller", "cli", "testing"},
    "client": {"log", "raft", "raft_driver", "api", "net", "broker", "coordinator", "controller", "cli", "testing"},
    "controller": {"raft_driver", "client", "api", "net", "broker", "coordinator", "cli", "testing"},
    "replication": {"api", "net", "cli", "testing", "broker", "cluster"},
    # ACL rules and the authorizer: pure facts the controller (records) and api (enforcement) share
    "quota": {"protocol", "log", "raft", "raft_driver", "client", "replication", "controller", "api", "net",
              "broker", "coordinator", "cluster", "cli", "testing", "config", "authorizer"},
    "authorizer": {"protocol", "log", "raft", "raft_driver", "client", "replication", "controller", "api", "net",
                   "broker", "coordinator", "cluster", "cli", "testing", "config"},
}
NO_ASYNCIO = {"configdefs", "model", "protocol", "log", "raft", "controller", "replication", "authorizer", "quota"}
# sans-IO packages that must not even touch kio, sockets, threads or the clock
PURE = {
    "controller": {"kio", "socket", "threading", "time", "selectors"},
    "replication": {"kio", "socket", "threading", "time", "selectors"},
    "authorizer": {"kio", "socket", "threading", "time", "selectors"},
    "quota": {"kio", "socket", "threading", "time", "selectors"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_one_way(package: str) -> None:
    files = sorted((SRC / package).rglob("*.py"))
    assert files, f"no modules found for {package}"
    violations = []
    for path in files:
        for name in imported_modules(path):
            parts = name.split(".")
            if parts[0] == "suoi" and len(parts) > 1 and parts[1] in FORBIDDEN[package]:
                violations.append(f"{path.relative_to(SRC)} imports {name}")
            if package in NO_ASYNCIO and parts[0] == "asyncio":
                violations.append(f"{path.relative_to(SRC)} imports asyncio (sans-IO layer)")
    assert violations == []


@pytest.mark.parametrize("package", sorted(PURE))
def test_pure_packages_import_no_io(package: str) -> None:
    violations = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in sorted((SRC / package).rglob("*.py"))
        for name in imported_modules(path)
        if name.split(".")[0] in PURE[package]
    ]
    assert violations == []
