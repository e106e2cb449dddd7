"""The benchmark suite runs from its one command and writes valid JSON (its speed is not checked here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import sql_sync

ROOT = Path(__file__).resolve().parents[2]


def test_quick_suite_writes_each_scenarios_figures_with_the_machine(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "sql_sync", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "sql_sync.quick.json").read_text())
    assert result["mode"] == "quick"
    assert result["machine"]["cores"] >= 1
    assert result["machine"]["python"]
    assert len(result["machine"]["load_average"]) == 3
    assert len(result["sizes"]) == 2
    for entry in result["sizes"]:
        initial = entry["initial"]
        # Every record of both apps was read, and every person ends up in both apps.
        assert initial["records_read"] == entry["left_rows"] + entry["right_rows"]
        assert initial["errors"] == 0
        assert initial["entities_rows"] == entry["left_rows"] + entry["right_rows"] - entry["rows_in_both"]
        assert initial["peak_rss_mib"] > 0
        assert entry["floor"]["records"] == initial["records_read"]
        assert entry["times_the_floor"] > 0
        # Settling never writes back what syncd itself wrote (no echo).
        assert entry["settle"]["echo_writes"] == 0
    steady = [entry["steady_state"] for entry in result["sizes"] if "steady_state" in entry]
    assert len(steady) == 1
    assert [round(step["share_changed"], 3) for step in steady[0]] == [0.001, 0.01, 0.1]
    # An edited left row is written to the right app: every edit is one update there.
    assert all(step["writes"] == step["rows_changed"] for step in steady[0])
    assert set(result["ratios"]["records_per_second_vs_smallest"]) == {
        str(e["size"]) for e in result["sizes"]
    }


@pytest.mark.slow
def test_quick_app_scenarios_write_their_counts_from_the_fakes(tmp_path: Path) -> None:
    """The HubSpot and Mailchimp scenarios at their quick sizes, through the suite's one command.
    Counts (calls, 429s, edits seen) are checked, not times."""
    names = ["batch_writes", "budget_throughput", "webhook_latency"]
    only = [arg for name in names for arg in ("--only", name)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", *only, "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = {name: json.loads((tmp_path / f"{name}.quick.json").read_text()) for name in names}
    for result in results.values():
        assert result["mode"] == "quick"
        assert result["machine"]["cores"] >= 1
    batch = results["batch_writes"]["summary"]
    assert batch["mailchimp_batch_minimum"] >= 1
    assert batch["echo_writes"] == 0
    for app in ("mailchimp", "hubspot"):
        for kind in ("create", "update"):
            assert batch[f"{app}_{kind}_write_calls_vs_minimum"] >= 1.0
    budget = results["budget_throughput"]
    for phase in ("creates", "updates"):
        assert budget[phase]["records"] == budget["rows"]
        assert budget[phase]["hubspot_429s"] == 0
        assert budget[phase]["while_writing"]["calls"] >= budget["rows"] // 100
    latency = results["webhook_latency"]["rates"]
    assert [r["rate_per_second"] for r in latency] == [10, 100, 300]
    assert all(r["edits"] > 0 and r["p50_ms"] > 0 and r["hubspot_429s"] == 0 for r in latency)


def test_a_syncs_peak_memory_is_its_own_not_what_the_benchmark_held_when_it_started_it(
    tmp_path: Path,
) -> None:
    # Linux carries ru_maxrss across exec: read from wait4, a sync started by a benchmark that
    # holds a lot of memory (its floor had just read both tables) reported that memory as its own.
    sql_sync.make_dbs(tmp_path, 200)
    (tmp_path / "contacts.toml").write_text(sql_sync.MAPPING)
    config = tmp_path / "config.toml"
    config.write_text(sql_sync.CONFIG.format(root=tmp_path))
    held = bytearray(400 * 1024 * 1024)
    held[::4096] = b"\x01" * len(range(0, len(held), 4096))  # resident, not just reserved
    run = sql_sync.run_cycles(config)
    del held
    assert run["cycles"][0]["errors"] == 0
    assert 0 < run["peak_rss_mib"] < 300, run["peak_rss_mib"]
