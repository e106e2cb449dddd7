"""A small world of in-memory apps, a mapping and a real SQLite store, for engine tests.

Every ``cycle()`` builds a new Runner on the same store file: each cycle is also a restart,
so state that only lived in memory would be caught missing.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncd.mapping import Mapping, load_mapping
from syncd.runner import Runner, RunStats
from syncd.store import AsyncStore, Store
from syncd.testing.memory import MemoryApp, MemoryConnector

FIELDS = {
    "email": ('transforms = ["email"]', {"a": '"email"', "b": '"props.email"', "c": '"email"'}),
    "name": ('transforms = ["trim"]', {"a": '"name"', "b": '"props.full_name"', "c": '"name"'}),
    "phone": ('transforms = ["e164"]', {"a": '"phone"', "b": '"props.phone"', "c": '"phone"'}),
    "tags": (
        'kind = "set"',
        {
            "a": '"tags"',
            "b": '{ path = "props.tags", inbound = [{ split = ";" }], outbound = [{ join = ";" }] }',
            "c": '"tags"',
        },
    ),
    "subscribed": ('consent = true\ntransforms = ["bool"]', {"a": '"subscribed"', "c": '"subscribed"'}),
}


def mapping_text(apps: tuple[str, ...], policy: str, delete: str, extra: str) -> str:
    """The test mapping: email (key), name, phone, tags (set), subscribed (consent) over ``apps``."""
    order = ", ".join(f'"{a}"' for a in apps)
    parts = [f'name = "people"\nkey = "email"\n{extra}\n']
    parts += [f'[apps.{a}]\nobject = "contacts"\n' for a in apps]
    parts.append(f'[conflict]\npolicy = "{policy}"\npriority = [{order}]\n')
    parts.append(f'[delete]\npolicy = "{delete}"\nmass_delete_threshold = 0.5\n')
    for name, (options, paths) in FIELDS.items():
        lines = [f"[fields.{name}]", options]
        lines += [f"apps.{a} = {p}" for a, p in paths.items() if a in apps]
        if any(a in apps for a in paths):
            parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


OBJ = "contacts"


def person(email: str, name: str = "Ada", **more: Any) -> dict[str, Any]:
    return {"email": email, "name": name, **more}


def b_person(email: str, name: str = "Ada", **more: Any) -> dict[str, Any]:
    return {"props": {"email": email, "full_name": name, **more}}


class World:
    def __init__(
        self,
        tmp_path: Path,
        *,
        policy: str = "priority",
        delete: str = "propagate",
        extra: str = 'initial_conflict = "policy"',
        apps: tuple[str, ...] = ("a", "b", "c"),
        text: str | None = None,
    ) -> None:
        self.tmp_path = tmp_path
        self.apps = {name: MemoryApp(name) for name in apps}
        text = text or mapping_text(apps, policy, delete, extra)
        path = tmp_path / "people.toml"
        path.write_text(textwrap.dedent(text))
        self.mapping: Mapping = load_mapping(path, known_apps=list(apps))
        self.db = tmp_path / "state.db"
        self.conditional = {name: True for name in apps}
        self.last: RunStats | None = None

    def connectors(self) -> dict[str, MemoryConnector]:
        return {
            n: MemoryConnector.over(a, page_size=7, conditional_writes=self.conditional[n])
            for n, a in self.apps.items()
        }

    async def cycle(
        self,
        *,
        full: bool = False,
        allow_mass_delete: bool = False,
        dry_run: bool = False,
        before: Callable[[Runner], None] | None = None,
    ) -> RunStats:
        store = await AsyncStore(self.db).open()
        try:
            runner = Runner(
                store,
                [self.mapping],
                self.connectors(),
                retry_base=0.0,
                batch_size=50,
                allow_mass_delete=allow_mass_delete,
                dry_run=dry_run,
            )
            if before is not None:
                before(runner)
            self.last = await runner.run_cycle(full=full)
            return self.last
        finally:
            await store.close()

    async def settle(self, *, full: bool = False, limit: int = 6) -> RunStats:
        """Cycle until a cycle writes nothing (a quiet period); fail if it never gets quiet."""
        for _ in range(limit):
            stats = await self.cycle(full=full)
            if stats.total("writes") == 0:
                return stats
        raise AssertionError(f"no quiet period after {limit} cycles: {stats.as_dict()}")

    def store(self) -> Store:
        return Store(self.db)

    def records(self, app: str) -> dict[str, dict[str, Any]]:
        return self.apps[app].live(OBJ)

    def by_email(self, app: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for rid, fields in self.records(app).items():
            flat = fields.get("props", fields)
            email = str(flat.get("email", "")).strip().lower()
            assert email not in out, f"duplicate {email} in {app}"
            out[email] = {**flat, "_id": rid}
        return out

    def changelog(self, **kw: Any) -> list[dict[str, Any]]:
        store = self.store()
        try:
            return store.changelog(limit=10_000, **kw)
        finally:
            store.close()

    def conflicts(self, status: str | None = "open") -> list[dict[str, Any]]:
        store = self.store()
        try:
            return store.conflicts(status=status)
        finally:
            store.close()


def logged(row: dict[str, Any], app: str, field: str, value: Any) -> bool:
    """Whether a change-log row records ``app``'s ``field`` taking ``value``: a row for the field,
    or the one row of a new record, whose ``new`` holds all the values it brought."""
    from syncd.engine import same

    if row["app"] != app:
        return False
    if row["field"] == field:
        return same(row["new"], value)
    new = row["new"]
    return row["code"] == "new_record" and isinstance(new, dict) and field in new and same(new[field], value)
