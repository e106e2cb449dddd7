"""The Mailchimp connector: the members of one audience, synced by the subscriber hash.

Reading: a full listing walks every member by ``last_changed`` (see ``_listing``); an
incremental read asks for members changed since the cursor's watermark minus an overlap, then
for members archived since a second watermark, which come back as tombstones. Writing: see
``_writes``; the consent rule lives in ``_consent``. Webhooks: see ``_webhooks``.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar, Unpack
from urllib.parse import quote

from syncd.connector import (
    Capabilities,
    ConfigError,
    ConnectorError,
    Cursor,
    NotFound,
    ObjectType,
    Page,
    PathProblem,
    PermanentError,
    RemoteRecord,
    WebhookHint,
    WriteItem,
    WriteResult,
)
from syncd.connector.http import HttpConnector, HttpSeams
from syncd.connector.redact import register_secret

from ._batches import BatchSubscriber, Entry, Written
from ._config import MailchimpConfig
from ._errors import classify
from ._listing import MemberWalk
from ._members import FIELDS, format_time, parse_time, subscriber_hash, to_record
from ._recent import RecentMembers
from ._webhooks import parse_event, verify_secret
from ._writes import MemberWriter

T = TypeVar("T")

OBJECT = "members"
#: Parts of an ``address`` merge field (``merge_fields.ADDRESS.city``).
ADDRESS_PARTS = ("addr1", "addr2", "city", "state", "zip", "country")
#: Member paths Mailchimp sets itself: they can be read, never written.
READ_ONLY = ("last_changed",)
_MIN_OVERLAP = timedelta(seconds=1)
#: Members per page of a paged re-read (Mailchimp's maximum ``count``).
_PAGE = 1000
#: A re-read of this many ids or more first asks for one page, to learn the audience's size.
_PAGED_READ_MIN = 50
#: Pages are read when each saves at least this many single GETs.
_PAGED_READ_GAIN = 4


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)


class MailchimpConnector(HttpConnector[MailchimpConfig]):
    """Members of one Mailchimp audience (``list_id``); ids are subscriber hashes."""

    name: ClassVar[str] = "mailchimp"
    version: ClassVar[str] = "0.1.0"
    capabilities: ClassVar[Capabilities] = Capabilities(
        incremental=True,
        full_listing=True,
        webhooks=True,
        create=True,
        update=True,
        delete=True,
        conditional_writes=False,
        tombstones=True,
        # updatedAt / last_changed / updated_at: stamped by the app's servers on every change.
        stamped_by_app=True,
        archives=True,
        # Batch subscribe takes 500 members a call.
        batch_size=500,
        # A create is batch subscribe with update_existing, keyed by the address.
        upsert_by_key=True,
        requests_per_second=None,
    )
    objects: ClassVar[tuple[ObjectType, ...]] = (
        ObjectType(OBJECT, primary_key="id", fields=FIELDS, natural_keys=("email_address",)),
    )

    def __init__(
        self, config: MailchimpConfig, *, app: str | None = None, **seams: Unpack[HttpSeams]
    ) -> None:
        super().__init__(config, app=app, **seams)
        self._http = self.http_client(
            base_url=config.api_root(),
            auth=("syncd", config.api_key.get_secret_value()),
            timeout=config.timeout_seconds,
            classify=classify,
            max_concurrency=config.max_connections,
        )
        self._list_path = f"/lists/{quote(config.list_id, safe='')}"
        self._writer = MemberWriter(self._http, config)
        self._batches = BatchSubscriber(self._http, self._list_path)
        self._recent = RecentMembers()
        self._overlap = max(timedelta(seconds=config.overlap_seconds), _MIN_OVERLAP)
        # A permanent delete cannot be undone: the archive delete policy must not count on a restore.
        self._shadow_class_vars(
            capabilities=replace(type(self).capabilities, archives=config.delete_mode == "archive")
        )
        # The webhook secret travels in a URL, which is easily logged: mask it wherever it shows up.
        for secret in self._webhook_secrets():
            register_secret(secret)

    async def check(self) -> None:
        await self._http.get("/ping")
        try:
            await self._http.get(self._list_path)
        except NotFound:
            raise ConfigError(f"mailchimp: audience {self.config.list_id!r} does not exist") from None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def preflight(
        self, obj: str, *, read: Sequence[str], write: Sequence[str], key: str | None
    ) -> list[PathProblem]:
        """Check mapped paths against the member shape and the audience's merge fields (read-only)."""
        if obj != OBJECT:
            return [
                PathProblem(
                    None, f"Mailchimp audiences hold {OBJECT!r}, not {obj!r}: write object = {OBJECT!r}"
                )
            ]
        merge_types = await self._merge_fields()
        problems: list[PathProblem] = []
        if key is not None and key != "email_address":
            problems.append(PathProblem(key, f"members are matched by 'email_address' only, not {key!r}"))
        for path in dict.fromkeys([*read, *write]):
            head, _, rest = path.partition(".")
            problem: str | None = None
            if head not in FIELDS:
                close = difflib.get_close_matches(head, FIELDS, n=1, cutoff=0.5)
                hint = f" (did you mean {close[0]!r}?)" if close else f"; member paths: {', '.join(FIELDS)}"
                problem = f"members have no {head!r}{hint}"
            elif head == "merge_fields" and rest:
                problem = _merge_path_problem(rest, merge_types, self.config.list_id)
            elif rest:
                problem = f"{head!r} has no parts: write {head!r}"
            elif head in READ_ONLY and path in write:
                problem = f'{head!r} is set by Mailchimp and cannot be written: map it with direction = "in"'
            if problem is not None:
                problems.append(PathProblem(path, problem))
        return problems

    async def _merge_fields(self) -> dict[str, str]:
        """Every merge field of the audience, tag -> type (all pages)."""
        found: dict[str, str] = {}
        offset = 0
        while True:
            try:
                response = await self._http.get(
                    self._list_path + "/merge-fields", params={"count": 1000, "offset": offset}
                )
            except NotFound:
                raise ConfigError(f"mailchimp: audience {self.config.list_id!r} does not exist") from None
            body = response.json()
            page = [f for f in body.get("merge_fields") or [] if isinstance(f, dict)]
            found.update({str(f.get("tag")): str(f.get("type")) for f in page})
            offset += len(page)
            if not page or offset >= int(body.get("total_items") or 0):
                return found

    # -- reading -------------------------------------------------------------------------------

    async def _fetch_members(self, params: dict[str, str | int]) -> Mapping[str, Any]:
        response = await self._http.get(self._list_path + "/members", params=params)
        body: Mapping[str, Any] = response.json()
        return body

    def _walk(self, since: datetime | None, status: str | None) -> MemberWalk:
        start = since - self._overlap if since is not None else None
        return MemberWalk(self._fetch_members, since=start, status=status, page_size=self.config.page_size)

    def _cursor(self, since: datetime | None, archived_since: datetime | None) -> Cursor:
        return {
            "list_id": self.config.list_id,
            "since": format_time(since) if since is not None else None,
            "archived_since": format_time(archived_since) if archived_since is not None else None,
        }

    def _load_cursor(self, cursor: Cursor) -> tuple[datetime | None, datetime | None]:
        if cursor.get("list_id") != self.config.list_id:
            raise ConfigError(
                f"mailchimp: the cursor belongs to audience {cursor.get('list_id')!r}, "
                f"not {self.config.list_id!r}; run a full listing"
            )
        try:
            marks = [cursor.get(k) for k in ("since", "archived_since")]
            since, archived = (parse_time(m) if isinstance(m, str) else None for m in marks)
        except ValueError as exc:
            raise ConfigError(f"mailchimp: unreadable cursor {cursor!r} ({exc})") from None
        return since, archived

    async def read_changes(self, obj: str, cursor: Cursor | None) -> AsyncIterator[Page]:
        self.object_type(obj)
        if cursor is None:
            async for page in self._full_listing():
                yield page
            return
        since, archived_since = self._load_cursor(cursor)
        changed = self._walk(since, None)
        async for members in changed.pages():
            records = [to_record(m) for m in members]
            yield Page(
                records, self._cursor(_later(since, changed.high), archived_since), total=changed.total
            )
        since = _later(since, changed.high)
        archived = self._walk(archived_since, "archived")
        async for members in archived.pages():
            records = [to_record(m) for m in members]
            total = None if archived.total is None else changed.delivered + archived.total
            yield Page(records, self._cursor(since, _later(archived_since, archived.high)), total=total)

    async def _full_listing(self) -> AsyncIterator[Page]:
        # Archivals after this point are picked up by the next incremental read as tombstones.
        latest = await self._fetch_members(
            {"status": "archived", "sort_field": "last_changed", "sort_dir": "DESC", "count": 1}
        )
        newest = latest.get("members") or []
        archived_since = parse_time(str(newest[0]["last_changed"])) if newest else None
        walk = self._walk(None, None)
        held: Page | None = None
        async for members in walk.pages():
            if held is not None:
                yield held
            held = Page(
                [to_record(m) for m in members], self._cursor(walk.high, archived_since), total=walk.total
            )
        assert held is not None, "a walk yields at least one page"
        yield Page(held.records, held.cursor, complete=walk.consistent, total=walk.total)

    async def get(self, obj: str, ids: Sequence[str]) -> list[RemoteRecord]:
        """The members by id: one GET each, or the audience's pages when that takes fewer calls.

        Mailchimp reads members one at a time or a page of up to 1000 at a time, nothing in
        between. When the ids are many against the audience's size (the engine re-reads each
        batch of up to 500 before updating it), the pages are cheaper; ids not on them (archived
        members, members added meanwhile) are then read one by one.
        """
        self.object_type(obj)
        unique = list(dict.fromkeys(ids))
        paged: dict[str, RemoteRecord] = {}
        if len(unique) >= _PAGED_READ_MIN:
            paged = await self._read_pages(set(unique))
        rest = [i for i in unique if i not in paged]
        found = [paged[i] for i in unique if i in paged]
        found += [r for r in await self._gather(self._get_one(i) for i in rest) if r is not None]
        return found

    async def _read_pages(self, wanted: set[str]) -> dict[str, RemoteRecord]:
        """The wanted members found on the audience's pages; {} if that would cost more calls."""
        first = await self._fetch_members({"count": _PAGE, "offset": 0})
        total = int(first.get("total_items") or 0)
        pages = -(-total // _PAGE)
        bodies = [first]
        if pages * _PAGED_READ_GAIN <= len(wanted):
            offsets = range(_PAGE, pages * _PAGE, _PAGE)
            bodies += await self._gather(self._fetch_members({"count": _PAGE, "offset": o}) for o in offsets)
        found: dict[str, RemoteRecord] = {}
        for body in bodies:
            for member in body.get("members") or []:
                if isinstance(member, dict) and member.get("id") in wanted:
                    record = to_record(member)
                    found[record.id] = record
        self._recent.keep(found.values())
        return found

    async def _get_one(self, member_id: str) -> RemoteRecord | None:
        try:
            record = to_record(await self._writer.read(member_id))
        except NotFound:
            self._recent.forget(member_id)
            return None
        self._recent.keep([record])
        return record

    async def find(self, obj: str, path: str, values: Sequence[str]) -> list[RemoteRecord]:
        self.object_type(obj)
        if path != "email_address":
            raise ConfigError(f"mailchimp: members can be found by email_address only, not {path!r}")
        ids = list(dict.fromkeys(subscriber_hash(v) for v in values if v.strip()))
        records = await self.get(obj, ids)
        # An archived member is no longer in the audience; creating it again re-adds it.
        return [r for r in records if not r.deleted]

    # -- writing -------------------------------------------------------------------------------

    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Upsert the members by address, 500 a call; adopted members keep their status unless
        the item names one (then a PATCH under the consent rule)."""
        self.object_type(obj)
        done: dict[int, RemoteRecord | ConnectorError] = {}
        entries: list[Entry] = []
        for index, item in enumerate(items):
            try:
                entries.append(Entry(index, self._writer.create_entry(item.fields)))
            except PermanentError as exc:
                done[index] = exc
        adopted: dict[int, Written] = {}
        for index, outcome in (await self._batches.send(entries)).items():
            if isinstance(outcome, ConnectorError):
                done[index] = outcome
            elif outcome.created or "status" not in items[index].fields:
                done[index] = outcome.record()
            else:
                adopted[index] = outcome

        async def settle(index: int, written: Written) -> RemoteRecord:
            return to_record(await self._writer.settle_status(written.member, items[index].fields["status"]))

        done.update(await self._each({i: settle(i, w) for i, w in adopted.items()}))
        return self._results(items, done)

    async def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Batch the updates of members read in the last moments (see ``_writes``); read the
        others first; send an address change, an opt-in or a versioned write on its own."""
        self.object_type(obj)
        done: dict[int, RemoteRecord | ConnectorError] = {}
        current: dict[int, RemoteRecord] = {}
        for index, item in enumerate(items):
            if not item.id:
                done[index] = PermanentError("mailchimp: an update needs the member id")
            elif item.expected_version is None and (seen := self._recent.get(item.id)) is not None:
                current[index] = seen
        unread = {
            i: item.id
            for i, item in enumerate(items)
            if item.id and i not in done and i not in current and item.expected_version is None
        }
        fresh = {r.id: r for r in await self.get(obj, list(dict.fromkeys(unread.values())))}
        for index, member_id in unread.items():
            if member_id in fresh:
                current[index] = fresh[member_id]
            else:
                done[index] = NotFound(f"mailchimp: member {member_id} not found", status=404)
        single = [i for i in range(len(items)) if i not in done and i not in current]
        entries: list[Entry] = []
        for index, record in current.items():
            fields = items[index].fields
            try:
                if self._writer.needs_single_update(record, fields):
                    single.append(index)
                elif (entry := self._writer.update_entry(record, fields)) is not None:
                    entries.append(Entry(index, entry))
                else:
                    done[index] = record  # nothing to change: nothing is sent
            except PermanentError as exc:
                done[index] = exc
        readded: dict[int, str] = {}
        refused: dict[int, PermanentError] = {}
        for index, outcome in (await self._batches.send(entries)).items():
            if isinstance(outcome, Written) and outcome.created:
                # The member left the audience between the read and this call (a person archived
                # it): batch subscribe, an upsert, added it back. An update must not undo a delete.
                readded[index] = str(outcome.member["id"])
            elif isinstance(outcome, PermanentError):
                refused[index] = outcome
            else:
                done[index] = outcome if isinstance(outcome, ConnectorError) else outcome.record()
        done.update(await self._each({i: self._archive_again(m) for i, m in readded.items()}))
        done.update(await self._gone_or_refused(obj, {i: (items[i], e) for i, e in refused.items()}))

        async def one(item: WriteItem) -> RemoteRecord:
            assert item.id is not None
            return await self._writer.update(item.id, item.fields, expected_version=item.expected_version)

        done.update(await self._each({i: one(items[i]) for i in single}))
        return self._results(items, done)

    async def _gone_or_refused(
        self, obj: str, refused: Mapping[int, tuple[WriteItem, PermanentError]]
    ) -> dict[int, ConnectorError]:
        """A batched update refused for a member that left the audience after the read (no
        status to add it back with) is not found, not a bad value: re-read those members."""
        if not refused:
            return {}
        ids = list(dict.fromkeys(str(item.id) for item, _ in refused.values()))
        present = {r.id for r in await self.get(obj, ids) if not r.deleted}
        outcome: dict[int, ConnectorError] = {}
        for index, (item, error) in refused.items():
            if item.id in present:
                outcome[index] = error
            else:
                self._recent.forget(str(item.id))
                outcome[index] = NotFound(
                    f"mailchimp: member {item.id} left the audience before the update arrived", status=404
                )
        return outcome

    async def _archive_again(self, member_id: str) -> RemoteRecord:
        """Archive a member an update re-added; its item fails with NotFound, so the engine
        re-reads the member and sees the delete it would otherwise have undone."""
        self._recent.forget(member_id)
        await self._http.delete(self._writer.member_path(member_id))
        raise NotFound(
            f"mailchimp: member {member_id} left the audience before the update arrived; "
            "the update re-added it and it was archived again",
            status=404,
        )

    async def _each(
        self, calls: Mapping[int, Awaitable[RemoteRecord]]
    ) -> dict[int, RemoteRecord | ConnectorError]:
        """Run per-member calls concurrently; a PermanentError is its member's, anything else is raised."""
        outcomes = await asyncio.gather(*calls.values(), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, PermanentError):
                raise outcome
        return {
            i: o for i, o in zip(calls, outcomes, strict=True) if isinstance(o, RemoteRecord | PermanentError)
        }

    def _results(
        self, items: Sequence[WriteItem], done: Mapping[int, RemoteRecord | ConnectorError]
    ) -> list[WriteResult]:
        results: list[WriteResult] = []
        for index, item in enumerate(items):
            outcome = done[index]
            if isinstance(outcome, ConnectorError):
                results.append(WriteResult(key=item.key, error=outcome))
            else:
                results.append(WriteResult(key=item.key, record=outcome))
        self._recent.keep(r.record for r in results if r.record is not None)
        return results

    async def delete(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        self.object_type(obj)

        async def one(item: WriteItem) -> RemoteRecord:
            if not item.id:
                raise PermanentError("mailchimp: a delete needs the member id")
            return await self._writer.delete(item.id)

        return await self._write_all(items, one)

    async def erase(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Permanent deletion (``actions/delete-permanent``), whatever ``delete_mode`` says."""
        self.object_type(obj)

        async def one(item: WriteItem) -> RemoteRecord:
            if not item.id:
                raise PermanentError("mailchimp: an erasure needs the member id")
            return await self._writer.delete(item.id, permanent=True)

        return await self._write_all(items, one)

    async def _write_all(
        self, items: Sequence[WriteItem], write: Callable[[WriteItem], Awaitable[RemoteRecord]]
    ) -> list[WriteResult]:
        """One result per item; a failure of the whole request (auth, transport) is raised instead."""
        outcomes = await asyncio.gather(*(write(item) for item in items), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, PermanentError):
                raise outcome
        results: list[WriteResult] = []
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, PermanentError):
                results.append(WriteResult(key=item.key, error=outcome))
            else:
                assert isinstance(outcome, RemoteRecord)
                results.append(WriteResult(key=item.key, record=outcome))
        return results

    @staticmethod
    async def _gather(calls: Iterable[Awaitable[T]]) -> list[T]:
        """Run ``calls`` concurrently (the client bounds the connections); re-raise a failure after all end."""
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        results: list[T] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            results.append(outcome)
        return results

    # -- webhooks ------------------------------------------------------------------------------

    def _webhook_secrets(self) -> list[str]:
        current = [self.config.webhook_secret] if self.config.webhook_secret is not None else []
        return [s.get_secret_value() for s in [*current, *self.config.previous_webhook_secrets]]

    def verify_webhook_request(self, method: str, url: str, headers: Mapping[str, str]) -> None:
        # The secret is in the URL: the whole check happens before the body is read.
        verify_secret(url, self._webhook_secrets())

    def verify_webhook(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        verify_secret(url, self._webhook_secrets())

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookHint]:
        return parse_event(headers, body, list_id=self.config.list_id)


def _merge_path_problem(rest: str, merge_types: Mapping[str, str], list_id: str) -> str | None:
    tag, _, part = rest.partition(".")
    kind = merge_types.get(tag)
    if kind is None:
        close = difflib.get_close_matches(tag, list(merge_types), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; its merge fields: {', '.join(merge_types)}"
        return f"audience {list_id!r} has no merge field {tag!r}{hint}"
    if part and (kind != "address" or part not in ADDRESS_PARTS):
        if kind != "address":
            return f"merge field {tag!r} is a {kind} field, it has no parts: write 'merge_fields.{tag}'"
        return f"address merge field {tag!r} has no part {part!r} (parts: {', '.join(ADDRESS_PARTS)})"
    return None


__all__ = ["MailchimpConnector"]
