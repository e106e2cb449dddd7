"""Dependencies point one way: nothing imports the CLI, and the engine imports no I/O.

The CLI is a thin layer over ``syncd.sync.operations`` and the runner; a module that imported it
(the admin API once did, for the entity view) would close an import loop through the demo and
drag click into the daemon.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import syncd

PACKAGE = Path(syncd.__file__).parent


def _imports(source: str, package: list[str]) -> Iterator[str]:
    """The absolute names a module in ``package`` imports, at any depth (lazy imports too);
    ``from a import b`` yields both ``a`` and ``a.b`` (``b`` may be a module)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def _file_imports(path: Path) -> Iterator[str]:
    package = list(path.relative_to(PACKAGE.parent).parts[:-1])
    return _imports(path.read_text(), package)


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "cli.py")


def _imports_cli(names: Iterator[str]) -> bool:
    return any(name == "syncd.cli" or name.startswith("syncd.cli.") for name in names)


def test_the_import_reader_sees_every_spelling_of_a_cli_import() -> None:
    # The guard below is only as good as this reader: prove it catches each spelling.
    spellings = [
        "import syncd.cli",
        "from syncd.cli import main",
        "from syncd import cli",
        "from .. import cli",
        "from ..cli import entity_view",
        "def later():\n    from syncd.cli import entity_view",
    ]
    for source in spellings:
        assert _imports_cli(_imports(source, ["syncd", "daemon"])), source
    assert not _imports_cli(_imports("from .cli import demo_command", ["syncd", "demo"]))
    assert not _imports_cli(_imports("import syncd.client", ["syncd"]))


def test_no_module_imports_the_cli() -> None:
    offenders = [
        str(path.relative_to(PACKAGE.parent)) for path in _modules() if _imports_cli(_file_imports(path))
    ]
    assert offenders == []


def test_importing_every_module_but_the_cli_leaves_the_cli_unloaded() -> None:
    script = (
        "import importlib, pkgutil, sys, syncd\n"
        "for info in pkgutil.walk_packages(syncd.__path__, 'syncd.'):\n"
        "    if info.name in ('syncd.cli', 'syncd.__main__'):\n"
        "        continue\n"
        "    try:\n"
        "        importlib.import_module(info.name)\n"
        "    except ImportError as exc:\n"
        "        if 'syncd' in str(exc.name or ''):\n"
        "            raise\n"
        "print('syncd.cli' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_the_engine_imports_nothing_that_does_io() -> None:
    allowed_outside = {"orjson"}
    for path in sorted((PACKAGE / "engine").glob("*.py")):
        for name in _file_imports(path):
            top = name.split(".")[0]
            if top == "syncd":
                assert name.startswith("syncd.engine"), f"{path.name} imports {name}"
            elif top not in sys.stdlib_module_names:
                assert top in allowed_outside, f"{path.name} imports {name}"
