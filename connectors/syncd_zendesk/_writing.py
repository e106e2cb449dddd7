"""Writes to Zendesk, one ``WriteResult`` per item.

* Users are created through ``create_or_update`` (one item) or ``create_or_update_many`` (a bulk
  job): Zendesk matches an existing user by email or ``external_id``, so a create that is retried
  after a lost answer, or that meets a user someone added by hand, adopts it instead of making a
  duplicate. Updates go through ``PUT /users/{id}`` or the ``update_many`` job. A job's per-item
  failures become per-item errors; the other items stand.
* Zendesk treats an ``email`` sent on update as an *additional* identity and keeps the old
  primary one. So the connector changes the primary email itself: add the new identity (or find
  it), make it primary, then remove the old one, leaving no stale secondary address behind.
* ``delete`` is Zendesk's soft delete (the user moves to deleted users and can be restored by an
  agent); ``erase`` deletes permanently (``DELETE /deleted_users/{id}``), for GDPR erasure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from syncd.connector import (
    ConnectorError,
    NotFound,
    PermanentError,
    RemoteRecord,
    TransientError,
    WriteItem,
    WriteResult,
)

from ._client import BULK_LIMIT, JsonObject, ZendeskApi
from ._records import ORGANIZATION_WRITABLE, USER_WRITABLE, payload, to_record

Fetch = Callable[[Sequence[str]], Awaitable[list[RemoteRecord]]]


def chunks(items: Sequence[Any], size: int = BULK_LIMIT) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def job_error(entry: JsonObject | None, app: str) -> ConnectorError | None:
    """The error of one job result, or None if the item succeeded (values stay out of the message)."""
    if entry is None:
        return TransientError(f"{app}: the bulk job reported no result for this item; it will be retried")
    if entry.get("success") is not False and not entry.get("error"):
        return None
    label = str(entry.get("error") or "Failed")
    details = str(entry.get("details") or "")
    field = details.split(":", 1)[0].strip() if ":" in details else ""
    message = f"{app}: Zendesk rejected the item: {label}" + (f" ({field})" if field else "")
    if label in ("RecordNotFound", "NotFound"):
        return NotFound(message, status=404, detail=entry)
    return PermanentError(message, status=422, detail=entry)


def by_index(results: Sequence[JsonObject], count: int) -> list[JsonObject | None]:
    """Job results in item order: by their ``index`` when present, else by position."""
    out: list[JsonObject | None] = [None] * count
    for position, entry in enumerate(results):
        index = entry.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            index = position
        if 0 <= index < count:
            out[index] = entry
    return out


def _numeric(item: WriteItem, what: str) -> str:
    if not item.id:
        raise PermanentError(f"zendesk: {what} needs the record id")
    if not str(item.id).strip().isdigit():
        raise NotFound(f"zendesk: {item.id!r} is not a Zendesk id", status=404)
    return str(item.id).strip()


class Writer:
    """Creates, updates, deletes and erases records of one Zendesk account."""

    def __init__(self, api: ZendeskApi, app: str, fetch_users: Fetch) -> None:
        self.api = api
        self.app = app
        self.fetch_users = fetch_users

    # -- users ----------------------------------------------------------------------------------

    async def create_users(self, items: Sequence[WriteItem]) -> list[WriteResult]:
        done: dict[str, WriteResult] = {}
        ready: list[tuple[WriteItem, dict[str, Any]]] = []
        for item in items:
            try:
                ready.append((item, payload(item.fields, USER_WRITABLE, "user")))
            except PermanentError as exc:
                done[item.key] = WriteResult(item.key, error=exc)
        ids: dict[str, str] = {}
        for chunk in chunks(ready):
            if len(chunk) == 1:
                item, body = chunk[0]
                try:
                    answer = await self.api.send("POST", "/users/create_or_update", {"user": body})
                    ids[item.key] = str(answer["user"]["id"])
                except PermanentError as exc:
                    done[item.key] = WriteResult(item.key, error=exc)
                continue
            results = await self.api.run_job(
                "POST", "/users/create_or_update_many", {"users": [body for _, body in chunk]}
            )
            for (item, _), entry in zip(chunk, by_index(results, len(chunk)), strict=True):
                error = job_error(entry, self.app)
                if error is not None:
                    done[item.key] = WriteResult(item.key, error=error)
                else:
                    assert entry is not None
                    ids[item.key] = str(entry["id"])
        wanted_email = {
            item.key: body["email"]
            for item, body in ready
            if item.key in ids and isinstance(body.get("email"), str)
        }
        await self._settle(ids, wanted_email, done)
        return [done[item.key] for item in items]

    async def update_users(self, items: Sequence[WriteItem]) -> list[WriteResult]:
        done: dict[str, WriteResult] = {}
        ready: list[tuple[WriteItem, str, dict[str, Any]]] = []
        emails: dict[str, str] = {}
        for item in items:
            try:
                user_id = _numeric(item, "an update")
                body = payload(item.fields, USER_WRITABLE, "user")
            except PermanentError as exc:
                done[item.key] = WriteResult(item.key, error=exc)
                continue
            email = body.pop("email", None)
            if isinstance(email, str) and email.strip():
                emails[item.key] = email
            ready.append((item, user_id, body))
        ids = {item.key: user_id for item, user_id, _ in ready}
        with_fields = [entry for entry in ready if entry[2]]
        for chunk in chunks(with_fields):
            if len(chunk) == 1:
                item, user_id, body = chunk[0]
                try:
                    await self.api.send("PUT", f"/users/{user_id}", {"user": body})
                except PermanentError as exc:
                    done[item.key] = WriteResult(item.key, error=exc)
                    del ids[item.key]
                continue
            results = await self.api.run_job(
                "PUT", "/users/update_many", {"users": [{"id": int(uid), **body} for _, uid, body in chunk]}
            )
            for (item, _, _), entry in zip(chunk, by_index(results, len(chunk)), strict=True):
                error = job_error(entry, self.app)
                if error is not None:
                    done[item.key] = WriteResult(item.key, error=error)
                    del ids[item.key]
        await self._settle(ids, emails, done)
        return [done[item.key] for item in items]

    async def _settle(
        self, ids: dict[str, str], emails: dict[str, str], done: dict[str, WriteResult]
    ) -> None:
        """Make each requested email primary, then read the written users back as results."""
        records = {r.id: r for r in await self.fetch_users(list(ids.values()))}
        for key, email in emails.items():
            user_id = ids.get(key)
            record = records.get(user_id) if user_id is not None else None
            if user_id is None or record is None:
                continue
            current = record.fields.get("email")
            if isinstance(current, str) and current.strip().lower() == email.strip().lower():
                continue
            try:
                await self.make_primary_email(user_id, email)
            except PermanentError as exc:
                done[key] = WriteResult(key, error=exc)
                del ids[key]
        changed = [ids[k] for k in emails if k in ids]
        if changed:
            records.update({r.id: r for r in await self.fetch_users(changed)})
        for key, user_id in ids.items():
            record = records.get(user_id)
            if record is None or record.deleted:
                done[key] = WriteResult(
                    key, error=NotFound(f"{self.app}: user {user_id} does not exist", status=404)
                )
            else:
                done[key] = WriteResult(key, record=record)

    async def make_primary_email(self, user_id: str, email: str) -> None:
        """Make ``email`` the user's primary address and drop the previous primary identity."""
        wanted = email.strip()
        listed = await self.api.get(f"/users/{user_id}/identities")
        identities = [i for i in listed.get("identities") or [] if i.get("type") == "email"]
        primary = next((i for i in identities if i.get("primary")), None)
        if primary is not None and str(primary.get("value", "")).lower() == wanted.lower():
            return
        target = next((i for i in identities if str(i.get("value", "")).lower() == wanted.lower()), None)
        if target is None:
            verified = bool(primary.get("verified")) if primary is not None else False
            added = await self.api.send(
                "POST",
                f"/users/{user_id}/identities",
                {"identity": {"type": "email", "value": wanted, "verified": verified}},
            )
            target = added["identity"]
        await self.api.send("PUT", f"/users/{user_id}/identities/{target['id']}/make_primary")
        if primary is not None and primary.get("id") != target.get("id"):
            await self.api.send("DELETE", f"/users/{user_id}/identities/{primary['id']}")

    async def delete_users(self, items: Sequence[WriteItem]) -> list[WriteResult]:
        async def one(item: WriteItem) -> RemoteRecord:
            user_id = _numeric(item, "a delete")
            answer = await self.api.send("DELETE", f"/users/{user_id}")
            return to_record(answer["user"])

        return await self._each(items, one)

    # -- organizations --------------------------------------------------------------------------

    async def create_organizations(self, items: Sequence[WriteItem]) -> list[WriteResult]:
        async def one(item: WriteItem) -> RemoteRecord:
            body = payload(item.fields, ORGANIZATION_WRITABLE, "organization")
            # create_or_update matches an existing organization by external_id or name: no duplicates.
            answer = await self.api.send("POST", "/organizations/create_or_update", {"organization": body})
            return to_record(answer["organization"])

        return await self._each(items, one)

    async def update_organizations(self, items: Sequence[WriteItem]) -> list[WriteResult]:
        async def one(item: WriteItem) -> RemoteRecord:
            org_id = _numeric(item, "an update")
            body = payload(item.fields, ORGANIZATION_WRITABLE, "organization")
            answer = await self.api.send("PUT", f"/organizations/{org_id}", {"organization": body})
            return to_record(answer["organization"])

        return await self._each(items, one)

    async def delete_organizations(self, items: Sequence[WriteItem]) -> list[WriteResult]:
        async def one(item: WriteItem) -> RemoteRecord:
            org_id = _numeric(item, "a delete")
            await self.api.send("DELETE", f"/organizations/{org_id}")
            return RemoteRecord(id=org_id, fields={}, deleted=True)

        return await self._each(items, one)

    # -- erasure --------------------------------------------------------------------------------

    async def erase_users(self, ids: Sequence[str]) -> list[WriteResult]:
        async def one(item: WriteItem) -> RemoteRecord:
            user_id = _numeric(item, "an erasure")
            # NotFound: already soft-deleted (or never existed: the next call says which).
            with contextlib.suppress(NotFound):
                await self.api.send("DELETE", f"/users/{user_id}")
            await self.api.budget.erase.acquire()
            answer = await self.api.send("DELETE", f"/deleted_users/{user_id}")
            return to_record({**answer["deleted_user"], "active": False})

        return await self._each([WriteItem(key=i, fields={}, id=i) for i in ids], one)

    # -- shared ---------------------------------------------------------------------------------

    async def _each(
        self, items: Sequence[WriteItem], write: Callable[[WriteItem], Awaitable[RemoteRecord]]
    ) -> list[WriteResult]:
        """One call per item, concurrently (the rate budget paces them); a PermanentError stays per item."""
        outcomes = await asyncio.gather(*(write(item) for item in items), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, PermanentError):
                raise outcome
        results: list[WriteResult] = []
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, PermanentError):
                results.append(WriteResult(item.key, error=outcome))
            else:
                assert isinstance(outcome, RemoteRecord)
                results.append(WriteResult(item.key, record=outcome))
        return results
