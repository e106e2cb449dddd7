"""Three `syncd run` processes on one PostgreSQL state share the work of HubSpot ↔ Mailchimp.

20,000 records over the two fakes (``SYNCD_SCALE_RECORDS``; the scenario is
``syncd.testing.scale``), edits in both apps while the initial sync runs, one daemon killed with
SIGKILL mid-run and another later. Asserted at the end, black-box, at the fakes:

- converged: both apps hold the same people with the same names, every edit applied (edits touch
  different people, so none may lose);
- no duplicates: each email once in each app;
- no write sent twice: every create reached its app exactly once (HubSpot batch inputs,
  Mailchimp member POSTs), every update at most once per edit made in the other app;
- each app's limit respected: no 429 from HubSpot's ten-second limit, no request refused by
  Mailchimp's ten-connection limit, although three daemons talk to each;
- ``/api/status`` of the survivor lists the live daemon(s) and says which one answered.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from syncd.testing.process import ADMIN_TOKEN, DaemonProcess, base_env, wait_for
from syncd.testing.scale import LIST_ID, Scenario

pytestmark = pytest.mark.slow

RECORDS = int(os.environ.get("SYNCD_SCALE_RECORDS", "20000"))
SEED = int(os.environ.get("SYNCD_SCALE_SEED", "20261130"))


@pytest.mark.timeout(1500)
async def test_three_daemons_on_one_postgresql_converge_without_duplicates_or_double_writes(
    tmp_path: Path, postgres_url: str
) -> None:
    rng = random.Random(SEED)
    apps = await Scenario(RECORDS).start()
    config = apps.write_config(tmp_path, postgres_url)
    env = base_env(SYNCD_DAEMON__ADMIN_TOKEN=ADMIN_TOKEN, **apps.env())
    daemons = [DaemonProcess(config, env, name=f"d{n}") for n in range(3)]
    expected = apps.initial_names()
    edits: Counter[str] = Counter()
    q = apps.quarter

    last_round = [0.0]
    #: For each HubSpot edit, how many requests HubSpot had received when it was made.
    edited_at: dict[str, int] = {}

    async def edit_some(n: int) -> None:
        """Edit ``n`` people in each app (different people on each side).

        Rounds are at least a second apart, as people's edits are: the conflict policy is
        ``newest`` and Mailchimp's ``last_changed`` has one-second resolution, so two edits of one
        person within a second cannot be ordered by either app's timestamps."""
        await wait_for(lambda: time.time() >= last_round[0] + 1.1, 5, what="a second between rounds")
        last_round[0] = time.time()
        people = rng.sample(sorted(expected), 2 * n)
        ids = apps.hubspot_ids()
        for email in people[:n]:
            if email in ids:
                name = f"crm edit {edits[email]} {email}"
                apps.hubspot.edit(ids[email], {"firstname": name})
                edited_at[email] = len(apps.hubspot.captured)
                expected[email], edits[email] = name, edits[email] + 1
        for email in people[n:]:
            if apps.mailchimp.member(email) is not None:
                name = f"list edit {edits[email]} {email}"
                apps.mailchimp.edit(email, merge_fields={"FNAME": name})
                expected[email], edits[email] = name, edits[email] + 1

    async def tell(emails: list[str]) -> None:
        """Print every HubSpot request naming these people, the daemons' retries and what syncd
        recorded about them (`syncd show`)."""
        ids = apps.hubspot_ids()
        for email in emails:
            # Every HubSpot request naming them, in order, against when the edit was made.
            print(f"{email} (id {ids.get(email)}): edited after request #{edited_at.get(email)}")
            for n, req in enumerate(apps.hubspot.captured):
                if email.encode() in req.body or f'"{ids.get(email)}"'.encode() in req.body:
                    print(f"  #{n} {req.method} {req.path} {req.body[:300]!r}")
            for at, who, source, merges in apps.mailchimp.history:
                if who == email:
                    print(f"  mailchimp {at} by {source}: {merges}")
        retries = [e for d in daemons for e in d.events() if e.get("event") in ("http.retry", "http.gave_up")]
        print(f"{len(retries)} retries:", *retries[:8], sep="\n  ")
        for email in emails:
            # What syncd recorded about them: their history and links, from the state.
            shown = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "syncd.cli",
                "--config",
                str(config),
                "show",
                email,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await shown.communicate()
            print(out.decode(errors="replace")[-6000:])

    try:
        for d in daemons:
            await d.start(within=60)
        await wait_for(
            lambda: apps.held() >= 4 * q + q // 3, 600, what="the initial sync under way", every=0.2
        )
        await edit_some(100)
        daemons[0].kill()  # mid-run: what it held in flight is taken over by the others
        await wait_for(
            lambda: apps.held() >= 4 * q + q, 600, what="the sync to go on after a kill", every=0.2
        )
        await edit_some(100)
        await wait_for(lambda: apps.held() >= 2 * apps.people, 900, what="everyone in both apps", every=0.5)
        daemons[1].kill()  # later: the last daemon carries on alone
        await edit_some(50)
        try:
            await wait_for(
                lambda: apps.converged(expected), 300, what="both apps to hold every edit", every=0.5
            )
        except AssertionError:
            crm, mail = apps.hubspot_names(), apps.mailchimp_names()
            wrong = sorted(e for e in expected if crm.get(e) != expected[e] or mail.get(e) != expected[e])
            for email in wrong[:10]:
                print(
                    f"{email}: expected {expected[email]!r}, crm {crm.get(email)!r}, list {mail.get(email)!r}"
                )
            await tell(wrong[:3])
            raise AssertionError(
                f"{len(wrong)} people differ from their last edit (first 10 printed)"
            ) from None

        async with daemons[2].client() as admin:
            status = (await admin.get("/api/status")).json()
        assert [d["self"] for d in status["daemons"]] == [True], status["daemons"]
    finally:
        for d in daemons:
            d.kill()
        await apps.stop()

    # No duplicates.
    assert len(apps.hubspot.live_ids()) == apps.people
    emails = [m.email.lower() for m in apps.mailchimp.audience(LIST_ID).members.values()]
    assert len(emails) == len(set(emails)) == apps.people
    # Every create exactly once: HubSpot and Mailchimp each got q new people.
    creates = apps.hubspot_creates()
    assert len(creates) == q
    assert set(creates.values()) == {1}, creates.most_common(3)
    assert apps.mailchimp_member_posts() == q
    # Every update at most once per edit made in the other app: no echo, no resend.
    by_id = {rid: email for email, rid in apps.hubspot_ids().items()}
    updates = Counter(by_id.get(str(i["id"]), "?") for i in apps.hubspot_inputs("update"))
    over = sorted(email for email, n in updates.items() if n > edits[email])
    if over:
        print(*(f"{e}: {updates[e]} HubSpot updates for {edits[e]} edits" for e in over[:10]), sep="\n")
        await tell(over[:3])
    assert not over, updates.most_common(3)
    by_hash = {hashlib.md5(email.encode()).hexdigest(): email for email in expected}
    member_writes = Counter(
        by_hash.get(p.split("?")[0].rstrip("/").rsplit("/", 1)[-1], "?")
        for m, p in apps.mailchimp.requests
        if m in ("PATCH", "PUT") and "/members/" in p
    )
    member_writes.update(apps.mailchimp_member_updates())
    assert all(n <= edits[email] for email, n in member_writes.items()), member_writes.most_common(3)
    # The apps' limits held with three daemons talking to each.
    assert apps.hubspot.rate_limited == 0
    assert apps.mailchimp.throttled == 0
