"""Creating, updating and deleting members.

Creates and most updates go through batch subscribe (``_batches``), 500 members a call; the
rest is one request chain per member.

* **create** upserts the member by its address (batch subscribe with ``update_existing``). A
  member already in the audience (a retry after a lost response, a member added by someone
  else) is adopted: updated with the item's fields, its address's spelling and its status kept
  (``status_if_new`` applies to new members only), so a retry never creates a second member nor
  sends a second confirmation email. An item that names a status the adopted member does not
  have gets it by a PATCH afterwards, under the consent rule.
* **update** diffs the item against the member as the connector last read it (``_recent``; the
  engine re-reads right before it updates) and sends only what changes; a no-op write is not
  sent at all. Tags are replaced as a set (``sync_tags``). Three kinds of update still go one
  member at a time, reading the member first: one that changes the address (batch subscribe is
  keyed by the address; the member id is its hash, so the result names the old id in
  ``replaces``), one that moves the status towards subscribed or pending (the consent rule
  needs the current status, read fresh) and one that asks for ``expected_version`` (a best-effort
  check: Mailchimp has no conditional write, batch or not). A member archived by someone
  between the read and a batched update is not brought back: batch subscribe would re-add it
  (the connector archives it again) or refuse it for want of a status; either way the item
  fails with NotFound, and the engine re-reads the member and sees the delete.
* **delete** archives the member or deletes it permanently, per ``delete_mode``; a member that is
  already gone counts as deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from syncd.connector import NotFound, PermanentError, PreconditionFailed, RemoteRecord
from syncd.connector.http import HttpClient

from ._config import MailchimpConfig
from ._consent import OPTING_IN, status_to_write
from ._members import subscriber_hash, tag_names, to_record

Member = dict[str, Any]


def _merge_values(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise PermanentError("mailchimp: merge_fields must be an object keyed by merge tag")
    # Mailchimp clears a merge field with "", not null.
    return {str(tag): "" if v is None else v for tag, v in value.items()}


def _tag_list(value: object) -> list[str]:
    if not isinstance(value, list | tuple | set | frozenset) or not all(isinstance(t, str) for t in value):
        raise PermanentError("mailchimp: tags must be a list of tag names")
    return sorted({t.strip() for t in value if t.strip()})


class MemberWriter:
    """The write operations on one audience."""

    def __init__(self, http: HttpClient, config: MailchimpConfig) -> None:
        self._http = http
        self._config = config
        self._members = f"/lists/{quote(config.list_id, safe='')}/members"

    def member_path(self, member_id: str) -> str:
        return f"{self._members}/{quote(member_id, safe='')}"

    async def read(self, member_id: str) -> Member:
        response = await self._http.get(self.member_path(member_id))
        body: Member = response.json()
        return body

    # -- batch entries -------------------------------------------------------------------------

    def create_entry(self, fields: Mapping[str, Any]) -> Member:
        """The batch subscribe entry of a new member (PermanentError if the item cannot be one)."""
        email = fields.get("email_address")
        if not isinstance(email, str) or not email.strip():
            raise PermanentError("mailchimp: a new member needs an email_address")
        wanted = fields.get("status") or self._config.status_if_new
        entry: Member = {
            "email_address": email.strip(),
            "status_if_new": status_to_write(subscriber_hash(email), None, wanted),
        }
        if "merge_fields" in fields:
            entry["merge_fields"] = _merge_values(fields["merge_fields"])
        if "tags" in fields:
            entry["tags"] = _tag_list(fields["tags"])
        return entry

    @staticmethod
    def needs_single_update(current: RemoteRecord, fields: Mapping[str, Any]) -> bool:
        """Whether an update must go on its own: a new address, or a subscribed/pending status."""
        if "email_address" in fields:
            email = fields["email_address"]
            if not isinstance(email, str) or email.strip() != current.fields.get("email_address"):
                return True
        # Even one that looks like a no-op: the person may have unsubscribed since the copy was read.
        return fields.get("status") in OPTING_IN

    @staticmethod
    def update_entry(current: RemoteRecord, fields: Mapping[str, Any]) -> Member | None:
        """The batch subscribe entry that brings ``current`` to ``fields``; None if nothing changes."""
        if current.deleted:
            raise NotFound(f"mailchimp: member {current.id} is archived", status=404)
        entry: Member = {}
        if "status" in fields:
            status = status_to_write(current.id, current.fields.get("status"), fields["status"])
            if status is not None:
                entry["status"] = status
        if "merge_fields" in fields:
            have = current.fields.get("merge_fields") or {}
            changed = {t: v for t, v in _merge_values(fields["merge_fields"]).items() if have.get(t) != v}
            if changed:
                entry["merge_fields"] = changed
        if "tags" in fields:
            wanted = _tag_list(fields["tags"])
            if wanted != list(current.fields.get("tags") or []):
                entry["tags"] = wanted
        if not entry:
            return None
        return {"email_address": current.fields["email_address"], **entry}

    async def settle_status(self, member: Member, wanted: object) -> Member:
        """Give an adopted member the status its create asked for, under the consent rule."""
        status = status_to_write(str(member["id"]), member.get("status"), wanted)
        if status is None:
            return member
        response = await self._http.patch(self.member_path(str(member["id"])), json={"status": status})
        patched: Member = response.json()
        return patched

    # -- update, one member ---------------------------------------------------------------------

    async def update(
        self, member_id: str, fields: Mapping[str, Any], *, expected_version: str | None = None
    ) -> RemoteRecord:
        try:
            current = await self.read(member_id)
        except NotFound:
            raise NotFound(f"mailchimp: member {member_id} not found", status=404) from None
        if current.get("status") == "archived":
            raise NotFound(f"mailchimp: member {member_id} is archived", status=404)
        # Best effort only: Mailchimp has no conditional write, so a change between this read
        # and the PATCH still goes unnoticed.
        if expected_version is not None and current.get("last_changed") != expected_version:
            raise PreconditionFailed(
                f"mailchimp: member {member_id} changed at {current.get('last_changed')}, "
                f"after the version {expected_version} the write was based on"
            )
        return await self._apply(member_id, current, fields)

    async def _apply(self, member_id: str, current: Member, fields: Mapping[str, Any]) -> RemoteRecord:
        patch: dict[str, Any] = {}
        if "status" in fields:
            status = status_to_write(member_id, current.get("status"), fields["status"])
            if status is not None:
                patch["status"] = status
        if "email_address" in fields:
            email = fields["email_address"]
            if not isinstance(email, str) or not email.strip():
                raise PermanentError("mailchimp: email_address must be a non-empty string")
            if email.strip() != current.get("email_address"):
                patch["email_address"] = email.strip()
        if "merge_fields" in fields:
            have = current.get("merge_fields") or {}
            changed = {t: v for t, v in _merge_values(fields["merge_fields"]).items() if have.get(t) != v}
            if changed:
                patch["merge_fields"] = changed
        member = current
        if patch:
            response = await self._http.patch(self.member_path(member_id), json=patch)
            member = response.json()
        if "tags" in fields:
            member = await self._sync_tags(member, _tag_list(fields["tags"]))
        record = to_record(member)
        if record.id != member_id:
            # The id followed the new address: the engine moves the old id's links to this one.
            record = replace(record, replaces=(member_id,))
        return record

    async def _sync_tags(self, member: Member, wanted: list[str]) -> Member:
        have = set(tag_names(member))
        changes = [{"name": t, "status": "active"} for t in wanted if t not in have]
        changes += [{"name": t, "status": "inactive"} for t in sorted(have - set(wanted))]
        if not changes:
            return member
        # is_syncing: tag-triggered automations do not fire for writes that only mirror another app.
        await self._http.post(
            self.member_path(str(member["id"])) + "/tags", json={"tags": changes, "is_syncing": True}
        )
        return {**member, "tags": [{"name": t} for t in wanted], "tags_count": len(wanted)}

    # -- delete --------------------------------------------------------------------------------

    async def delete(self, member_id: str, *, permanent: bool = False) -> RemoteRecord:
        path = self.member_path(member_id)
        try:
            if permanent or self._config.delete_mode == "permanent":
                await self._http.post(path + "/actions/delete-permanent", repeatable=True)
            else:
                await self._http.delete(path)
        except NotFound:
            pass  # already gone: the delete has happened
        return RemoteRecord(id=member_id, fields={}, deleted=True)
