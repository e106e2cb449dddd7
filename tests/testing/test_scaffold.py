"""``scaffold``: the generated plugin project is complete, clean, discoverable and passes the kit as generated."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import syncd
from syncd.connector import CONNECTOR_API_VERSION, Connector
from syncd.testing.scaffold import scaffold

EXPECTED_FILES = {
    "pyproject.toml",
    "README.md",
    "src/syncd_acme_crm/__init__.py",
    "src/syncd_acme_crm/connector.py",
    "src/syncd_acme_crm/fake.py",
    "src/syncd_acme_crm/py.typed",
    "tests/test_conformance.py",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return scaffold("acme_crm", tmp_path)


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=180, check=False
    )


def test_scaffold_writes_a_complete_project_with_every_marker_filled_in(
    project: Path, tmp_path: Path
) -> None:
    assert project == tmp_path / "syncd-acme-crm"
    written = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    assert written == EXPECTED_FILES
    for path in project.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "{{" not in text, f"{path.name} still has an unfilled template marker"
            if path.suffix == ".py":
                compile(text, str(path), "exec")


def test_pyproject_registers_the_connector_under_the_syncd_entry_point_group(project: Path) -> None:
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["name"] == "syncd-acme-crm"
    assert meta["project"]["entry-points"]["syncd.connectors"] == {
        "acme_crm": "syncd_acme_crm:AcmeCrmConnector"
    }
    assert any(dep.startswith("syncd") for dep in meta["project"]["dependencies"])


def test_the_entry_point_loads_a_syncd_connector_class(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(project / "src"))
    try:
        cls = EntryPoint("acme_crm", "syncd_acme_crm:AcmeCrmConnector", "syncd.connectors").load()
        assert isinstance(cls, type)
        assert issubclass(cls, Connector)
        assert cls.name == "acme_crm"
        assert cls.api_version == CONNECTOR_API_VERSION
    finally:
        for module in [m for m in sys.modules if m == "syncd_acme_crm" or m.startswith("syncd_acme_crm.")]:
            del sys.modules[module]


@pytest.mark.parametrize(
    "name", ["", "Acme", "1acme", "acme-crm", "acme crm", "a__b", "acme_", "class", "x" * 41]
)
def test_names_that_cannot_be_a_module_and_entry_point_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="connector name"):
        scaffold(name, tmp_path)
    assert list(tmp_path.iterdir()) == [], "nothing is written for a refused name"


def test_an_existing_non_empty_project_is_never_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "syncd-acme"
    target.mkdir()
    (target / "pyproject.toml").write_text("# my work\n", encoding="utf-8")
    with pytest.raises(FileExistsError):
        scaffold("acme", tmp_path)
    assert (target / "pyproject.toml").read_text(encoding="utf-8") == "# my work\n"


def test_generated_code_passes_ruff_lint_and_format(project: Path) -> None:
    lint = run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], project)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = run([sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."], project)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.fixture
def pythonpath(project: Path) -> str:
    return os.pathsep.join([str(project / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])


@pytest.mark.slow
def test_generated_conformance_suite_passes_out_of_the_box_with_no_check_skipped(
    project: Path, pythonpath: str
) -> None:
    result = run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/test_conformance.py"],
        project,
        PYTHONPATH=pythonpath,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert " passed" in report
    assert "skipped" not in report, f"every check should run against the generated connector:\n{report}"


@pytest.mark.slow
def test_generated_code_type_checks_strictly(project: Path, tmp_path: Path) -> None:
    syncd_root = str(Path(syncd.__file__).resolve().parent.parent)
    result = run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--explicit-package-bases",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "src/syncd_acme_crm",
            "tests",
        ],
        project,
        MYPYPATH=os.pathsep.join([syncd_root, str(project / "src")]),
    )
    assert result.returncode == 0, result.stdout + result.stderr
