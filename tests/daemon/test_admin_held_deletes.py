"""The admin API's held deletes: listed with their evidence, approved or rejected once, logged."""

from __future__ import annotations

from syncd.daemon import Daemon
from syncd.store import StateStore

from .conftest import Client


def _hold(store: StateStore) -> int:
    sample = [{"entity_id": 1, "key": "ada@example.com", "remote_id": "7"}]
    return store.hold_deletes(
        "people", "alpha", linked=5, missing=4, sample=sample, records=["7"], run_id=None
    )


async def test_held_deletes_are_listed_then_decided_once_with_who_and_why(
    daemon: Daemon, client: Client
) -> None:
    hold = await daemon.store.call(_hold)
    async with client(daemon) as http:
        [listed] = (await http.get("/api/deletes")).json()["deletes"]
        assert (listed["id"], listed["status"], listed["missing"]) == (hold, "held", 4)
        assert listed["sample"][0]["key"] == "ada@example.com"

        url = f"/api/deletes/{hold}/approve"
        assert (await http.post(url, content=b"{nope")).status_code == 400
        assert (await http.post(url, json={"by": 3})).status_code == 400
        assert (await http.post(url, json={"who": "ada"})).status_code == 400
        assert (await http.post("/api/deletes/x/approve", json={})).status_code == 400
        assert (await http.post("/api/deletes/99999/reject", json={})).status_code == 404

        done = await http.post(url, json={"by": "ada", "why": "cleanup"})
        assert done.status_code == 200
        assert (done.json()["status"], done.json()["decided_by"], done.json()["why"]) == (
            "approved",
            "ada",
            "cleanup",
        )
        late = await http.post(f"/api/deletes/{hold}/reject")
        assert late.status_code == 409
        assert "already approved" in late.json()["error"]
        entries = (await http.get("/api/changelog")).json()["entries"]
        assert [e["detail"] for e in entries if e["code"] == "deletes_approved"] == [
            {"hold": hold, "by": "ada", "why": "cleanup"}
        ]


async def test_rejecting_without_a_body_is_recorded_as_the_admin_api(daemon: Daemon, client: Client) -> None:
    hold = await daemon.store.call(_hold)
    async with client(daemon) as http:
        done = await http.post(f"/api/deletes/{hold}/reject")
        assert done.status_code == 200
        assert (done.json()["status"], done.json()["decided_by"]) == ("rejected", "admin API")
