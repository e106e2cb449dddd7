"""The health report (``syncd.sync.health``) from a state's facts: states, held deletes, who runs."""

from __future__ import annotations

import json
from pathlib import Path

from syncd.store import Store
from syncd.sync.health import AppInfo, health_report, pending_deletes
from syncd.sync.operations import decide_held_delete

APPS = {"crm": AppInfo("sql", 30.0), "shop": AppInfo("sql", 30.0)}


def test_a_paused_app_needs_a_person_and_a_good_read_ends_the_pause(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    try:
        store.record_read("crm", ok=True)
        failure = {"kind": "auth", "error": "401 token revoked"}
        store.record_read("crm", ok=False, failure=failure, paused="credentials rejected")
        report = health_report(store, APPS, 1e10)
        crm = report["apps"]["crm"]
        assert crm["state"] == "paused"
        assert "credentials rejected" in crm["state_reason"]
        assert "its credentials were rejected: 401 token revoked" in crm["state_reason"]
        assert report["needs_attention"] is True
        [item] = report["attention"]
        assert item["what"] == "crm is paused"
        assert item["command"] == "syncd validate && syncd sync --once"
        assert report["apps"]["shop"]["state"] == "ok"  # never read: nothing known against it
        store.record_read("crm", ok=True)
        assert health_report(store, APPS, 1e10)["needs_attention"] is False
    finally:
        store.close()


def test_deletes_held_by_the_guard_count_until_a_person_decides(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    try:
        run = store.begin_run("cycle")
        sample = [{"entity_id": 1, "key": "a@x", "remote_id": "r1"}]
        hold = store.hold_deletes(
            "people", "crm", linked=40, missing=36, sample=sample, records=["r1"], run_id=run
        )
        assert pending_deletes(store) == {"crm": 36}
        report = health_report(store, APPS, 1e10)
        assert report["pending_deletes"] == 36
        assert report["apps"]["crm"]["pending_deletes"] == 36
        [item] = [a for a in report["attention"] if "held by the mass-delete guard" in a["what"]]
        assert item["command"].startswith("syncd deletes approve")
        decide_held_delete(store, hold, False, "ada", "a partial export")
        assert pending_deletes(store) == {}
        assert health_report(store, APPS, 1e10)["needs_attention"] is False
    finally:
        store.close()


def test_daemons_come_from_heartbeats_and_the_writer_lease(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    try:
        assert health_report(store, APPS, 1000.0)["daemons"] == []
        holder = json.dumps({"id": "abc", "pid": 42, "host": "box"})
        store.take_lease("syncd-run", holder, 1000.0, 30)
        store.heartbeat("other", {"url": "http://127.0.0.1:8080", "leases": ["app:crm"]}, 1000.0, 30)
        daemons = health_report(store, APPS, 1010.0)["daemons"]
        assert [(d["id"], d["via"]) for d in daemons] == [("other", "heartbeat"), ("abc", "lease")]
        assert daemons[0]["url"] == "http://127.0.0.1:8080"
        assert daemons[0]["last_seen_seconds"] == 10.0
        assert (daemons[1]["host"], daemons[1]["pid"]) == ("box", 42)
        assert health_report(store, APPS, 2000.0)["daemons"] == []  # both expired
    finally:
        store.close()


def test_full_reconciliation_drift_and_budget_use_per_app(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    try:
        run = store.begin_run("full:crm")
        store.finish_run(run, {"app": "crm", "drift": 3, "complete": True})
        store.take_tokens("budget:shop", 5, 1.0, 10, 100.0)
        report = health_report(store, APPS, 100.0)
        full = report["apps"]["crm"]["last_full_reconcile"]
        assert (full["run"], full["drift"], full["complete"]) == (run, 3, True)
        assert report["apps"]["shop"]["last_full_reconcile"] is None
        assert report["apps"]["shop"]["budget_used"] == 0.5
        assert report["apps"]["crm"]["budget_used"] is None
    finally:
        store.close()


def test_daemons_publishing_different_mapping_files_need_a_person(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    try:
        store.heartbeat("d1", {"host": "a", "mappings": "1111aaaa2222bbbb"}, 1000.0, 30)
        store.heartbeat("d2", {"host": "b", "mappings": "1111aaaa2222bbbb"}, 1000.0, 30)
        assert health_report(store, APPS, 1001.0)["needs_attention"] is False
        store.heartbeat("d2", {"host": "b", "mappings": "9999cccc0000dddd"}, 1002.0, 30)
        report = health_report(store, APPS, 1003.0)
        [item] = report["attention"]
        assert item["what"] == "daemons run 2 different versions of the mapping files"
        assert "d1 on a: 1111aaaa2222bbbb" in item["why"]
        assert "d2 on b: 9999cccc0000dddd" in item["why"]
        assert {d["id"]: d["mappings"] for d in report["daemons"]} == {
            "d1": "1111aaaa2222bbbb",
            "d2": "9999cccc0000dddd",
        }
    finally:
        store.close()
