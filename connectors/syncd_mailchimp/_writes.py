"""Creating, updating and deleting members, one request chain per member.

Per-member calls give exact per-item results (batch subscribe only reports failures by email).

* **create** POSTs the member. If the address is already in the audience (a retry after a lost
  response, or a member added by someone else) Mailchimp answers ``Member Exists`` and the
  member is adopted: re-read and updated with the item's fields, so a retry never creates a
  second member nor sends a second confirmation email.
* **update** re-reads the member first: the consent rule needs its current status, the tags are
  written as an add/remove diff through the tags endpoint, and fields that already hold the
  wanted value are not sent (a no-op write changes nothing and emails nobody). A member id is
  the hash of its address, so an update that changes the address returns the member under its
  new id with ``replaces`` naming the old one.
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
from ._consent import status_to_write
from ._errors import MemberExists
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

    # -- create --------------------------------------------------------------------------------

    async def create(self, fields: Mapping[str, Any]) -> RemoteRecord:
        email = fields.get("email_address")
        if not isinstance(email, str) or not email.strip():
            raise PermanentError("mailchimp: a new member needs an email_address")
        body: dict[str, Any] = {"email_address": email.strip()}
        wanted = fields.get("status") or self._config.status_if_new
        body["status"] = status_to_write(subscriber_hash(email), None, wanted)
        if "merge_fields" in fields:
            body["merge_fields"] = _merge_values(fields["merge_fields"])
        if "tags" in fields:
            body["tags"] = _tag_list(fields["tags"])
        try:
            response = await self._http.post(self._members, json=body)
        except MemberExists:
            return await self._adopt(subscriber_hash(email), fields)
        return to_record(response.json())

    async def _adopt(self, member_id: str, fields: Mapping[str, Any]) -> RemoteRecord:
        current = await self.read(member_id)
        if current.get("status") == "archived":
            raise PermanentError(
                f"mailchimp: member {member_id} exists but is archived and could not be re-added"
            )
        # The address matched already; do not rewrite its case on someone else's record.
        adopted = {k: v for k, v in fields.items() if k != "email_address"}
        return await self._apply(member_id, current, adopted)

    # -- update --------------------------------------------------------------------------------

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
                await self._http.post(path + "/actions/delete-permanent")
            else:
                await self._http.delete(path)
        except NotFound:
            pass  # already gone: the delete has happened
        return RemoteRecord(id=member_id, fields={}, deleted=True)
