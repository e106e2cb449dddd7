"""The review page's held deletes (the mass-delete guard's queue) over HTTP: the evidence, the
confirm step, approve and reject recorded with who and why, the read-only role refused, and a
hold decided meanwhile (by the CLI or another admin) refused with 409.

The guard itself (what trips it, what an approval deletes) is proven by tests/engine and
tests/cli/test_held_deletes_cli.py; here a hold is put in the state as the guard leaves it."""

from __future__ import annotations

import re

import httpx

from syncd.daemon import Daemon
from syncd.store import StateStore
from syncd.sync.operations import decide_held_delete

from .test_review_page import READONLY_TOKEN, page, people, review

__all__ = ["people", "review"]  # fixtures used by the tests below

GONE = [f"gone{i}@example.com" for i in range(25)]


async def _hold(daemon: Daemon) -> int:
    sample = [
        {"entity_id": i + 1, "key": email, "remote_id": str(100 + i)} for i, email in enumerate(GONE[:20])
    ]

    def unit(store: StateStore) -> int:
        return int(
            store.hold_deletes(
                "people",
                "alpha",
                linked=30,
                missing=25,
                sample=sample,
                records=[str(100 + i) for i in range(25)],
                run_id=None,
            )
        )

    return int(await daemon.store.call(unit))


def _csrf(response: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', response.text)
    assert found is not None
    return found.group(1)


async def test_held_deletes_show_their_evidence_and_approval_goes_through_a_confirm_step(
    review: Daemon,
) -> None:
    hold = await _hold(review)
    async with page(review, name="Grace") as admin:
        listing = await admin.get("/deletes")
        assert listing.status_code == 200
        assert f"#{hold} people/alpha" in listing.text
        assert "25 of 30 linked records were missing" in listing.text
        assert all(email in listing.text for email in GONE[:20])
        assert "… and 5 more" in listing.text
        confirm = await admin.post("/deletes/preview", {"id": hold, "choice": "approve"})
        assert confirm.status_code == 200
        assert "deletes, in the other apps of people, those of these 25 records" in confirm.text
        # Nothing is decided by the preview.
        row = await review.store.call(lambda s: s.held_delete(hold))
        assert row is not None
        assert row["status"] == "held"
        no_why = await admin.post("/deletes/apply", {"id": hold, "choice": "approve", "why": " "})
        assert no_why.status_code == 400
        done = await admin.post(
            "/deletes/apply", {"id": hold, "choice": "approve", "why": "old leads removed"}
        )
        assert done.status_code == 200
        assert "1 approved" in done.text
        row = await review.store.call(lambda s: s.held_delete(hold))
        assert row is not None
        assert (row["status"], row["decided_by"], row["why"]) == (
            "approved",
            "Grace (admin)",
            "old leads removed",
        )
        log = await review.store.call(lambda s: s.changelog(limit=20))
        assert any(
            "Grace (admin)" in str(e["reason"]) and "old leads removed" in str(e["reason"]) for e in log
        )
        # Decided: no buttons any more, and a second decision is refused.
        assert "Approve the deletes" not in (await admin.get("/deletes")).text
        again = await admin.post("/deletes/apply", {"id": hold, "choice": "reject", "why": "changed my mind"})
        assert again.status_code == 409


async def test_a_rejection_keeps_the_records_and_a_hold_decided_elsewhere_is_refused(review: Daemon) -> None:
    hold = await _hold(review)
    async with page(review) as admin:
        confirm = await admin.post("/deletes/preview", {"id": hold, "choice": "reject"})
        assert "are kept in the other apps" in confirm.text
        # Meanwhile someone rejects it with the CLI.
        await review.store.call(decide_held_delete, hold, False, "ada", "a partial export")
        late = await admin.post("/deletes/apply", {"id": hold, "choice": "reject", "why": "partial export"})
        assert late.status_code == 409
        assert "already rejected" in late.text
        missing = await admin.post("/deletes/apply", {"id": 999, "choice": "approve", "why": "x"})
        assert missing.status_code == 404
        assert "Show decided ones too" in (listing := await admin.get("/deletes")).text
        assert f"#{hold} people/alpha" not in listing.text
        assert f"#{hold} people/alpha" in (await admin.get("/deletes", all="1")).text


async def test_the_read_only_role_sees_held_deletes_masked_and_cannot_decide_them(review: Daemon) -> None:
    hold = await _hold(review)
    async with page(review, token=READONLY_TOKEN) as viewer:
        listing = await viewer.get("/deletes")
        assert listing.status_code == 200
        assert f"#{hold} people/alpha" in listing.text
        assert GONE[0] not in listing.text  # personal data masked for this role
        refused = await viewer.post("/deletes/apply", {"id": hold, "choice": "approve", "why": "x"})
        assert refused.status_code == 403
    row = await review.store.call(lambda s: s.held_delete(hold))
    assert row is not None
    assert row["status"] == "held"
