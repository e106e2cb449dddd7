"""Copy a whole state from one backend to another (``syncd state migrate``, dry runs).

Every table is copied in key order (``id`` order for the tables that have one), in batches, each
batch one transaction on the target; ids are kept, so references between tables stay right, and
a PostgreSQL target's id sequences go on after the copied ids. The copy is verified by counting
each table on both sides.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .base import StateStore
from .db import TABLES, connect
from .location import is_postgres_url


class TargetNotEmpty(Exception):
    """The target state already holds rows (``tables``); copying would mix two states."""

    def __init__(self, tables: list[str]) -> None:
        super().__init__(f"the target state is not empty ({', '.join(tables)})")
        self.tables = tables


@dataclass(frozen=True)
class TableCount:
    table: str
    source: int
    target: int

    @property
    def ok(self) -> bool:
        return self.source == self.target


def copy_state(
    source: StateStore, target: StateStore, *, force: bool = False, batch: int = 2000
) -> list[TableCount]:
    """Copy every table of ``source`` into ``target``; returns the per-table counts after.

    A target that holds rows is refused (``TargetNotEmpty``) unless ``force``, which empties it
    first. Nothing else should write to either state while it runs.
    """
    filled = [t for t in TABLES if target.count_rows(t)]
    if filled and not force:
        raise TargetNotEmpty(filled)
    if filled:
        target.clear_tables()
    for table, key in TABLES.items():
        if key != ("id",):
            target.write_rows(table, source.read_table(table, None, batch))
            continue
        after = 0
        while rows := source.read_table(table, after, batch):
            target.write_rows(table, rows)
            after = int(rows[-1]["id"])
    return [TableCount(t, source.count_rows(t), target.count_rows(t)) for t in TABLES]


def snapshot(location: str | Path, path: Path) -> None:
    """Copy the state at ``location`` into a new SQLite file ``path`` (dry runs plan on it).

    A SQLite state is copied page by page (SQLite's backup, the source is left as it is; a state
    that does not exist yet gives no file); a PostgreSQL state goes through ``copy_state``.
    """
    if not is_postgres_url(location):
        if Path(location).exists():
            src, dst = sqlite3.connect(str(location)), sqlite3.connect(str(path))
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
        return
    source, target = connect(location), connect(path)
    try:
        copy_state(source, target)
    finally:
        source.close()
        target.close()
