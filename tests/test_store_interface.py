"""The SQLite store implements the whole ``StateStore`` interface, and nothing above the store
reaches past it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import syncd
from syncd.store import StateStore, Store
from syncd.store import base as store_base


def _interface_methods() -> set[str]:
    names: set[str] = set()
    for cls in StateStore.__mro__:
        if cls.__module__ == store_base.__name__:
            names |= {n for n, v in vars(cls).items() if callable(v) and not n.startswith("_")}
    return names


def test_sqlite_store_has_every_method_of_the_interface_with_the_same_parameters() -> None:
    methods = _interface_methods()
    assert {"transaction", "claim", "log_changes", "take_lease"} <= methods
    for name in sorted(methods):
        assert hasattr(Store, name), f"Store lacks {name}"
        want = list(inspect.signature(getattr(StateStore, name)).parameters)
        got = list(inspect.signature(getattr(Store, name)).parameters)
        assert got == want, f"{name}: {got} != {want}"


def test_no_module_above_the_store_imports_the_sqlite_backend_or_sqlite3() -> None:
    root = Path(syncd.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(("store/", "testing/")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "syncd.store.db":
                offenders.append(f"{rel}: from syncd.store.db import ...")
            if isinstance(node, ast.Import) and any(a.name == "sqlite3" for a in node.names):
                offenders.append(f"{rel}: import sqlite3")
    assert sorted(offenders) == []
