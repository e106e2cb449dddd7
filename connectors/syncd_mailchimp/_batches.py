"""Batch subscribe: up to 500 members written in one ``POST /lists/{list_id}`` call.

Each entry is keyed by its email address, so the call is an upsert by subscriber hash
(``update_existing``): sending it twice (a retry after a lost response, a restart after a crash)
updates the member the first call made instead of adding a second one, and never sends a
second confirmation email. Mailchimp answers 200 with the members it added (``new_members``),
the ones it updated (``updated_members``) and one entry per refused member (``errors``), so
one bad member never fails the others.

Entries that carry ``tags`` go in calls with ``sync_tags`` (the member's tags become exactly
the entry's); entries without go in calls without it, so their tags are left alone. A call
never holds the same member twice, because the results are matched back by member id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.connector import ConnectorError, PermanentError, RemoteRecord, TransientError
from syncd.connector.http import HttpClient
from syncd.connector.redact import redact_text

from ._consent import ConsentRefused
from ._members import subscriber_hash, to_record

#: Members per batch subscribe call (Mailchimp's limit).
MAX_MEMBERS = 500

Member = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Entry:
    """One member of a batch call, and where its result goes."""

    index: int
    body: Member

    @property
    def member_id(self) -> str:
        return subscriber_hash(str(self.body["email_address"]))


@dataclass(frozen=True, slots=True)
class Written:
    """A member the call added (``created``) or updated, as Mailchimp returned it."""

    member: Member
    created: bool

    def record(self) -> RemoteRecord:
        return to_record(self.member)


Outcome = Written | ConnectorError


def _calls(entries: Sequence[Entry]) -> list[tuple[bool, list[Entry]]]:
    """Group entries into calls: by ``sync_tags``, at most ``MAX_MEMBERS``, no member twice."""
    calls: list[tuple[bool, list[Entry]]] = []
    for sync_tags in (False, True):
        group = [e for e in entries if ("tags" in e.body) == sync_tags]
        open_calls: list[tuple[set[str], list[Entry]]] = []
        for entry in group:
            for ids, members in open_calls:
                if entry.member_id not in ids and len(members) < MAX_MEMBERS:
                    break
            else:
                ids, members = set(), []
                open_calls.append((ids, members))
            ids.add(entry.member_id)
            members.append(entry)
        calls += [(sync_tags, members) for _, members in open_calls]
    return calls


def member_error(error: Mapping[str, Any]) -> PermanentError:
    """The typed error of one refused member (an ``errors[]`` item of the response)."""
    text = str(error.get("error") or "refused")
    field = error.get("field")
    if field:
        text += f" ({field}: {error.get('field_message') or ''})"
    message = f"mailchimp: {redact_text(text)}"
    if "compliance state" in text:
        # Mailchimp's own consent guard: the member unsubscribed or bounced.
        return ConsentRefused(message + "; syncd never re-subscribes an opted-out member", status=400)
    return PermanentError(message, status=400, detail={"error_code": error.get("error_code")})


class BatchSubscriber:
    """Sends batch subscribe calls for one audience."""

    def __init__(self, http: HttpClient, list_path: str) -> None:
        self._http = http
        self._path = list_path

    async def send(self, entries: Sequence[Entry]) -> dict[int, Outcome]:
        """The outcome of every entry, by ``Entry.index``.

        A call that fails as a whole with a transient error (throttling, a timeout, a 5xx that
        outlasted the client's retries) gives that error to each of its entries, so the other
        calls' results are kept; any other failure of a call (auth) is raised.
        """
        calls = _calls(entries)
        answers = await asyncio.gather(
            *(self._call(members, sync_tags) for sync_tags, members in calls), return_exceptions=True
        )
        outcomes: dict[int, Outcome] = {}
        for (_, members), answer in zip(calls, answers, strict=True):
            if isinstance(answer, TransientError):
                outcomes.update({e.index: answer for e in members})
            elif isinstance(answer, BaseException):
                raise answer
            else:
                outcomes.update(answer)
        return outcomes

    async def _call(self, entries: list[Entry], sync_tags: bool) -> dict[int, Outcome]:
        body: dict[str, Any] = {"members": [e.body for e in entries], "update_existing": True}
        if sync_tags:
            body["sync_tags"] = True
        response = await self._http.post(self._path, json=body)
        answer: Mapping[str, Any] = response.json()
        by_id: dict[str, Outcome] = {}
        for created, key in ((True, "new_members"), (False, "updated_members")):
            for member in answer.get(key) or []:
                if isinstance(member, dict) and member.get("id"):
                    by_id[str(member["id"])] = Written(member, created)
        for error in answer.get("errors") or []:
            if isinstance(error, Mapping):
                by_id[subscriber_hash(str(error.get("email_address") or ""))] = member_error(error)
        # Unknown outcome: a retry is safe, the call is an upsert.
        missing = TransientError("mailchimp: the batch response did not mention this member")
        return {e.index: by_id.get(e.member_id, missing) for e in entries}


__all__ = ["MAX_MEMBERS", "BatchSubscriber", "Entry", "Outcome", "Written", "member_error"]
