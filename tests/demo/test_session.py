"""The running demo, in-process: every command its guide prints works, and edits propagate.

The guide is read back from the demo's own output and each line is run as printed: the admin
API and metrics calls, the HubSpot edit, the Mailchimp read, and the ``syncd`` commands (as
subprocesses, against the demo's config).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from syncd.demo.run import READY, demo
from syncd.demo.session import DemoSession

from .curl import run_curl

pytestmark = pytest.mark.slow


async def wait_for(predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def syncd(line: str) -> tuple[int, str]:
    """A printed ``syncd ...`` line, run as a subprocess."""
    words = shlex.split(line)
    assert words[0] == "syncd", line
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncd.cli",
        *words[1:],
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


def printed(lines: list[str], start: str) -> str:
    """The command printed on the line after the first line starting with ``start``."""
    for i, line in enumerate(lines):
        if line.startswith(start):
            return lines[i + 1].strip()
    raise AssertionError(f"no line starting with {start!r} in the output")


def commands(lines: list[str], prefix: str) -> list[str]:
    return [line.strip() for line in lines if line.strip().startswith(prefix)]


async def test_every_command_the_running_demo_prints_works_and_an_edit_propagates(tmp_path: Path) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=120)
    session = DemoSession(console, seed=5, customers=60, directory=tmp_path / "demo", poll_interval=1.0)
    running = asyncio.create_task(demo(session, once=False))
    await wait_for(lambda: READY in buffer.getvalue() or running.done(), 60, "the demo to converge")
    assert not running.done(), buffer.getvalue()
    lines = buffer.getvalue().splitlines()
    hubspot, mailchimp = session.apps.hubspot, session.apps.mailchimp

    # the admin API and metrics, with the printed token
    status, metrics, entity = commands(lines, "curl -sS -H 'Authorization: Bearer")[:3]
    report = (await run_curl(status)).json()
    assert report["ready"] is True
    assert report["outbox_depth"] == 0
    assert report["conflicts_open"] == len(session.data.conflicts) + len(session.data.duplicates)
    scrape = await run_curl(metrics)
    assert scrape.status_code == 200
    assert 'syncd_records_read_total{app="crm"}' in scrape.text
    view = (await run_curl(entity)).json()
    assert {link["app"] for link in view["links"]} == {"crm", "email"}

    # the review page at the printed URL opens with the printed token and lists the conflicts
    url = next(line for line in lines if line.startswith("Review page")).rsplit(" ", 1)[1]
    token = next(line for line in lines if "log in with the admin token:" in line).rsplit(" ", 1)[1]
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        nonce = (await http.get("/login")).headers["set-cookie"].split(";")[0].split("=", 1)[1]
        login = await http.post(
            "/login", data={"csrf": nonce, "token": token}, headers={"Cookie": f"syncd_login={nonce}"}
        )
        assert login.status_code == 303
        cookie = login.headers["set-cookie"].split(";")[0]
        queue = await http.get("/conflicts", headers={"Cookie": cookie})
        assert queue.status_code == 200
        assert f"{report['conflicts_open']} open" in queue.text

    # the HubSpot edit reaches Mailchimp through the webhook, and the feed prints it
    edit = printed(lines, "Edit a contact in the fake HubSpot")
    body = json.loads(shlex.split(edit)[shlex.split(edit).index("-d") + 1])
    new_last = body["properties"]["lastname"]
    assert (await run_curl(edit)).status_code == 200
    email = view["key"]
    await wait_for(
        lambda: (mailchimp.member(email) or {}).get("merge_fields", {}).get("LNAME") == new_last,
        10,
        "the edit to reach Mailchimp",
    )
    await wait_for(lambda: "(written to email)" in buffer.getvalue(), 5, "the feed to print the write")
    member = (await run_curl(printed(lines, "change is printed below"))).json()
    assert member["merge_fields"]["LNAME"] == new_last
    code, shown = await syncd(commands(lines, "syncd show ")[0])
    assert code == 0, shown
    assert new_last in shown

    # conflicts: listed; one resolved through the admin API (written at once), one through the CLI
    code, listing = await syncd(commands(lines, "syncd conflicts list")[0])
    assert code == 0, listing
    listed = [int(line.split()[0][1:]) for line in listing.splitlines() if line.startswith("#")]
    assert len(listed) == report["conflicts_open"]
    by_id = {c["id"]: c for c in await session.open_conflicts()}
    assert sorted(by_id) == sorted(listed)

    def side(conflict: dict[str, Any], app: str) -> Any:
        return next(c["value"] for c in conflict["candidates"] if c["app"] == app)

    def member_value(conflict: dict[str, Any]) -> Any:
        tag = {"last_name": "LNAME", "phone": "PHONE"}[conflict["field"]]
        return (mailchimp.member(conflict["entity_key"]) or {}).get("merge_fields", {}).get(tag)

    def contact_value(conflict: dict[str, Any]) -> Any:
        rid = session.apps.contact_id(conflict["entity_key"])
        props = (hubspot.record(rid) or {}).get("properties", {}) if rid else {}
        return props.get({"last_name": "lastname", "phone": "phone"}[conflict["field"]])

    resolve = commands(lines, "curl -sS -X POST")[0]
    taken = (await run_curl(resolve)).json()
    first = by_id[taken["resolved"]]
    await wait_for(
        lambda: member_value(first) == side(first, "crm"), 10, "the admin API resolution to be written"
    )

    second = next(c for c in by_id.values() if c["kind"] != "identity" and c["id"] != first["id"])
    printed_resolve = commands(lines, "syncd conflicts resolve")[0].split()
    printed_resolve[3] = str(second["id"])
    printed_resolve[printed_resolve.index("--take") + 1] = "email"
    code, said = await syncd(shlex.join(printed_resolve))
    assert code == 0, said
    # what the guide promises: the running daemon writes a CLI resolution at its next poll
    await wait_for(
        lambda: contact_value(second) == side(second, "email"), 10, "the CLI resolution to be written"
    )

    assert session.daemon is not None
    session.daemon.request_stop("test over")
    assert await asyncio.wait_for(running, 30) == 0
    assert (tmp_path / "demo" / "config.toml").exists(), "a --dir workspace is kept"


async def test_running_demo_neither_flaps_nor_reopens_a_resolved_conflict(tmp_path: Path) -> None:
    """Polls of a converged demo change nothing: no record is linked then unlinked (the email
    app's filter reads a field only HubSpot has), and the conflict the guide suggests resolving
    stays resolved."""
    import sqlite3

    buffer = io.StringIO()
    console = Console(file=buffer, width=120)
    session = DemoSession(console, seed=1, customers=300, directory=tmp_path / "demo", poll_interval=0.3)
    running = asyncio.create_task(demo(session, once=False))
    await wait_for(lambda: READY in buffer.getvalue() or running.done(), 90, "the demo to converge")
    assert not running.done(), buffer.getvalue()
    lines = buffer.getvalue().splitlines()
    taken = (await run_curl(commands(lines, "curl -sS -X POST")[0])).json()
    db = tmp_path / "demo" / "state" / "syncd.db"

    def query(sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(db)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    start = query("SELECT max(id) FROM runs")[0][0]
    last_change = query("SELECT max(id) FROM changelog")[0][0]
    # Forty more reads: twenty polls of each app.
    await wait_for(lambda: query("SELECT max(id) FROM runs")[0][0] >= start + 40, 120, "forty more polls")
    churn = query(
        "SELECT reason FROM changelog WHERE id > "
        f"{last_change} AND (reason LIKE 'linked existing%' OR reason LIKE 'left the scope%')"
    )
    assert churn == []
    assert query(f"SELECT status FROM conflicts WHERE id = {int(taken['resolved'])}") == [("resolved",)]
    reopened = query(
        "SELECT c.id FROM conflicts c JOIN conflicts r ON r.entity_id = c.entity_id AND r.field = c.field "
        f"AND r.id = {int(taken['resolved'])} WHERE c.id != r.id"
    )
    assert reopened == []
    assert query(f"SELECT count(*) FROM changelog WHERE id > {last_change} AND reason LIKE 'conflict%'") == [
        (0,)
    ]
    assert session.daemon is not None
    session.daemon.request_stop("test over")
    assert await asyncio.wait_for(running, 30) == 0
