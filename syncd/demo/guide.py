"""What the demo prints once it has converged: where to look and what to try.

Every command in the guide is real and complete — the fakes' own APIs with their demo
credentials, the admin API with the generated token, syncd commands with the demo's config —
so it can be pasted into a second terminal as is. ``guide_lines`` is pure, so tests run exactly
the lines a user reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .apps import HttpCall

#: How the guide names each app of the example mapping.
APP_NAMES = {"crm": "HubSpot", "email": "Mailchimp"}


@dataclass(frozen=True, slots=True)
class GuideFacts:
    """Everything the guide names, gathered from the running session."""

    workspace: str
    temporary: bool
    config: str
    daemon_url: str
    admin_token: str
    poll_interval: float
    example_email: str
    edit: HttpCall
    check: HttpCall
    edited: Mapping[str, str]
    conflicts: Sequence[Mapping[str, Any]]
    #: The mapping file in the workspace's mappings/ folder.
    mapping: str = "contacts.toml"


def admin_call(facts: GuideFacts, path: str, *, method: str = "GET", body: Any = None) -> HttpCall:
    """A call to the daemon's admin API with the demo's bearer token."""
    return HttpCall(method, facts.daemon_url + path, {"Authorization": f"Bearer {facts.admin_token}"}, body)


def _sides(conflict: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{c['app']} {json.dumps(c['value'], ensure_ascii=False)}" for c in conflict["candidates"]
    )


def _conflict_lines(facts: GuideFacts, cfg: str) -> list[str]:
    conflicts = facts.conflicts
    duplicates = [c for c in conflicts if c.get("kind") == "identity"]
    head = f"{len(conflicts)} conflicts are left for review"
    if duplicates:
        app = str(duplicates[0]["candidates"][0]["app"])
        head += f" ({len(duplicates)} of them two {APP_NAMES.get(app, app)} records with one email)"
    lines = [head + ":", f"  syncd conflicts list {cfg}"]
    sample = next((c for c in conflicts if c.get("kind") != "identity"), None)
    if sample is None:
        return lines
    app = str(sample["candidates"][0]["app"])
    resolve = admin_call(facts, f"/api/conflicts/{sample['id']}/resolve", method="POST", body={"take": app})
    return [
        *lines,
        f"Resolve #{sample['id']}, {sample['entity_key']} {sample['field']} ({_sides(sample)}), "
        f"taking {APP_NAMES.get(app, app)}'s value:",
        f"  syncd conflicts resolve {sample['id']} --take {app} {cfg}",
        f"The daemon writes the chosen value at its next poll (every {facts.poll_interval:g} s); resolved "
        "through the admin API",
        "instead, it is written at once:",
        "  " + resolve.curl(),
    ]


def guide_lines(facts: GuideFacts) -> list[str]:
    """The guide, one printed line per item (never wrapped: commands must stay pasteable)."""
    cfg = f"--config {facts.config}"
    kept = "removed when the demo stops" if facts.temporary else "kept after the demo stops"
    edited = ", ".join(f"{k} = {v!r}" for k, v in facts.edited.items())
    return [
        f"Everything is in {facts.workspace} ({kept}):",
        "  config.toml              apps and daemon settings; secrets come from the files in secrets/",
        f"  mappings/{facts.mapping}".ljust(27) + "what syncs: the example mapping",
        "  state/syncd.db           links, baselines, change log, conflicts, outbox",
        "",
        f"Review page (status, conflicts, dead letters, customers, activity): {facts.daemon_url}/",
        f"  log in with the admin token: {facts.admin_token}",
        "",
        f"Admin API and metrics of the daemon at {facts.daemon_url} (token in secrets/admin_token):",
        "  " + admin_call(facts, "/api/status").curl(),
        "  " + admin_call(facts, "/metrics").curl(),
        "  " + admin_call(facts, f"/api/entities/{facts.example_email}").curl(),
        "",
        f"Edit a contact in the fake HubSpot through its real API ({edited}):",
        "  " + facts.edit.curl(),
        "HubSpot sends a signed webhook, the daemon re-reads the contact and writes Mailchimp; the",
        "change is printed below within a second. Then look at the member in the fake Mailchimp:",
        "  " + facts.check.curl(),
        f"  syncd show {facts.example_email} {cfg}",
        "",
        *_conflict_lines(facts, cfg),
        "",
        f"More, each with {cfg}: syncd show EMAIL, syncd plan, syncd deadletters list, syncd validate.",
    ]
