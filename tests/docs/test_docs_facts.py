"""Facts the docs state, checked against the code: test names, links, metrics, messages, the unit file."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncd.cli import main
from syncd.daemon.metrics import Metrics
from syncd.settings import ConfigFileError, DaemonSettings, load_settings
from syncd.store import Store

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _defined_tests() -> set[str]:
    names: set[str] = set()
    for path in [*ROOT.joinpath("tests").rglob("*.py"), ROOT / "syncd" / "testing" / "conformance.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
                names.add(node.name)
    return names


def test_every_test_the_docs_cite_exists() -> None:
    defined = _defined_tests()
    cited = {
        (path.name, name)
        for path in DOCS
        for name in re.findall(r"`(test_\w+)`", path.read_text(encoding="utf-8"))
    }
    assert len(cited) >= 30
    missing = sorted(f"{doc}: {name}" for doc, name in cited if name not in defined)
    assert not missing, f"the docs cite tests that do not exist: {missing}"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def test_every_relative_link_in_the_docs_points_at_a_file_and_heading_that_exist() -> None:
    broken = []
    checked = 0
    for doc in DOCS:
        text = re.sub(r"^```.*?^```", "", doc.read_text(encoding="utf-8"), flags=re.M | re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            path = (doc.parent / file_part).resolve() if file_part else doc
            checked += 1
            if not path.exists():
                broken.append(f"{doc.name}: {target} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{doc.name}: {target} (no such heading)")
    assert checked >= 40
    assert not broken, broken


def test_the_secret_in_config_error_quoted_in_security_md_is_the_real_one(tmp_path: Path) -> None:
    quoted = (ROOT / "docs" / "security.md").read_text(encoding="utf-8").split("```\nconfig.toml: ", 1)[1]
    quoted = "config.toml: " + quoted.split("\n", 1)[0]
    config = tmp_path / "config.toml"
    config.write_text('[apps.crm]\nconnector = "hubspot"\n[apps.crm.settings]\ntoken = "pat-na1-x"\n')
    with pytest.raises(ConfigFileError) as caught:
        load_settings(config)
    assert [p.replace(str(config), "config.toml") for p in caught.value.problems] == [quoted]


def test_the_metrics_operations_md_alerts_on_exist() -> None:
    metrics = Metrics(lambda: ["crm"])
    metrics.webhooks_rejected.labels(app="crm", reason="unverified").inc()
    metrics.polls.labels(app="crm", outcome="failed").inc()
    metrics.drift.labels(app="crm").set(0)
    exposed = set(re.findall(r"^(syncd_\w+)", metrics.render().decode(), flags=re.M))
    named = set(
        re.findall(r"\b(syncd_[a-z_]+)", (ROOT / "docs" / "operations.md").read_text(encoding="utf-8"))
    )
    assert len(named) >= 8
    assert named <= exposed, (
        f"operations.md names metrics the daemon does not expose: {sorted(named - exposed)}"
    )


def test_the_migrations_query_in_operations_md_works(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    query = next(
        shlex.split(line)[2]
        for line in text.splitlines()
        if line.startswith("sqlite3 ") and "migrations" in line
    )
    store = Store(tmp_path / "syncd.db")
    try:
        names = [row[0] for row in store.conn.execute(query).fetchall()]
    finally:
        store.close()
    assert names[:2] == ["m001_core", "m002_daemon"]


def _unit() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (ROOT / "docs" / "syncd.service").read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_the_systemd_unit_starts_syncd_run_with_real_options_and_stops_it_gracefully() -> None:
    unit = _unit()
    (exec_start,) = unit["ExecStart"]
    args = shlex.split(exec_start)
    assert args[0].endswith("/syncd")
    assert args[1] == "run"
    main.commands["run"].make_context("run", args[2:])  # raises on an unknown option or a bad value
    assert float(unit["TimeoutStopSec"][0]) > DaemonSettings().drain_timeout
    assert unit["KillSignal"] == ["SIGTERM"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_the_unit_does_not_restart_on_the_exit_code_of_a_bad_config(tmp_path: Path) -> None:
    (code,) = _unit()["RestartPreventExitStatus"]
    bad = tmp_path / "config.toml"
    bad.write_text("state = 3\n")
    result = CliRunner().invoke(main, ["run", "--config", str(bad)])
    assert result.exit_code == int(code), result.output


def _status_report(tmp_path: Path) -> dict[str, object]:
    """A full health report (an app with a full reconciliation on record, so no key is left out)."""
    from syncd.sync.health import AppInfo, health_report

    store = Store(tmp_path / "state.db")
    try:
        run = store.begin_run("full:crm")
        store.finish_run(run, {"app": "crm", "drift": 0, "complete": True})
        return health_report(store, {"crm": AppInfo("sql", 30.0)}, 1e10)
    finally:
        store.close()


def test_every_key_of_syncd_status_json_is_documented_in_cli_md_and_nothing_more(tmp_path: Path) -> None:
    report = _status_report(tmp_path)
    text = (Path(__file__).parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    section = text.split("## Health at a glance", 1)[1].split("\n## ", 1)[0]
    documented_top: set[str] = set()
    documented_app: set[str] = set()
    for row in re.findall(r"^\| (`[^|]+) \|", section, flags=re.MULTILINE):
        names = re.findall(r"`([^`]+)`", row)
        last_app = False
        for name in names:
            if name.startswith("apps.NAME."):
                documented_app.add(name.removeprefix("apps.NAME."))
                last_app = True
            elif name.startswith(".") and last_app:
                documented_app.add(name[1:])
            else:
                documented_top.add(name)
    apps = report["apps"]
    assert isinstance(apps, dict)
    assert documented_top == set(report) - {"apps"}
    assert documented_app == set(apps["crm"])


def test_the_openapi_status_schema_names_every_key_of_the_health_report(tmp_path: Path) -> None:
    from syncd.daemon.admin import openapi_document

    report = _status_report(tmp_path)
    schemas = openapi_document()["components"]["schemas"]
    apps = report["apps"]
    assert isinstance(apps, dict)
    assert set(report) <= set(schemas["Status"]["properties"])
    assert set(apps["crm"]) <= set(schemas["AppStatus"]["properties"])
