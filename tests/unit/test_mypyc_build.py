"""The opt-in mypyc build (setup.py, `make venv-compiled`) keeps working as the code changes.

CI runs the pure Python build only, so the rules that the compiled build needs, each of which broke
it once (benchmarks/README.md, "The small-request path", fifth session), are checked here on the
source of the modules setup.py compiles: a compiled class whose base is an interpreted class with
a ``__dict__`` overlaps its layout and crashed the node; a compiled exception lost its class
attributes unless they are ``ClassVar``; mypyc gives a name one type per function, so two
``except`` clauses of different types binding one name raised TypeError on bad input.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: bases a compiled (native) class may have besides the classes of other compiled modules
_NATIVE_OK_BASES = {"object", "Exception", "Protocol", "NamedTuple", "Generic"}


def _hot_path() -> list[Path]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "HOT_PATH" for t in node.targets):
            return [ROOT / p for p in ast.literal_eval(node.value)]
    raise AssertionError("setup.py has no HOT_PATH list")


def _classes() -> list[tuple[Path, ast.ClassDef]]:
    return [(path, node) for path in _hot_path() for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.ClassDef)]


def _compiled(cls: ast.ClassDef) -> bool:
    """Native under mypyc: not kept interpreted by `suoi.interpreted`, not a NamedTuple."""
    decorators = {ast.unparse(d) for d in cls.decorator_list}
    return "interpreted" not in decorators and "NamedTuple" not in {ast.unparse(b) for b in cls.bases}


def test_hot_path_lists_modules_that_exist() -> None:
    paths = _hot_path()
    assert paths and all(p.is_file() and p.suffix == ".py" for p in paths), paths
    assert len(set(paths)) == len(paths)


def test_compiled_classes_have_only_compiled_or_builtin_bases() -> None:
    compiled = {cls.name for _, cls in _classes()}
    wrong = [(path.name, cls.name, ast.unparse(base)) for path, cls in _classes() if _compiled(cls)
             for base in cls.bases
             if ast.unparse(base).split("[")[0] not in compiled | _NATIVE_OK_BASES]
    assert wrong == [], "compile the base's module too, or decorate the class with suoi.interpreted.interpreted"


def test_compiled_exceptions_declare_class_attributes_as_classvar() -> None:
    exceptions = {"Exception"}
    for _, cls in _classes():  # a module's classes in order: bases before subclasses
        if {ast.unparse(b) for b in cls.bases} & exceptions:
            exceptions.add(cls.name)
    wrong = [(path.name, cls.name, ast.unparse(stmt)) for path, cls in _classes()
             if cls.name in exceptions and _compiled(cls) for stmt in cls.body
             if isinstance(stmt, ast.Assign)
             or (isinstance(stmt, ast.AnnAssign) and "ClassVar" not in ast.unparse(stmt.annotation))]
    assert wrong == []


def test_one_type_per_except_name_in_a_function() -> None:
    wrong = []
    for path in _hot_path():
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                types: dict[str, set[str]] = {}
                for node in ast.walk(fn):
                    if isinstance(node, ast.ExceptHandler) and node.name and node.type is not None:
                        types.setdefault(node.name, set()).add(ast.unparse(node.type))
                wrong += [(path.name, fn.name, name) for name, seen in types.items() if len(seen) > 1]
    assert wrong == []
