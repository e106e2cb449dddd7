"""Read statements against the synced table; each is one short statement (no long read transaction).

Paging is keyset paging (``WHERE key > last ORDER BY key LIMIT n``), never OFFSET: stable under
concurrent inserts and deletes, and each page costs the same however deep the listing is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ._dialect import Column, DbConnection, Dialect, rows
from ._schema import TableSpec
from ._timestamps import Stamp

Row = dict[str, Any]


class TableQueries:
    """The statements for one table, with identifiers quoted once."""

    def __init__(self, dialect: Dialect, spec: TableSpec) -> None:
        self.dialect = dialect
        self.spec = spec
        quote = dialect.quote
        self.table = quote(spec.name)
        self.key = quote(spec.primary_key.name)
        self.select = f"SELECT {', '.join(quote(name) for name in spec.names)} FROM {self.table}"

    def _quoted(self, column: Column | None) -> str:
        assert column is not None
        return self.dialect.quote(column.name)

    def listing_page(self, conn: DbConnection, after: Any, limit: int, *, with_deleted: bool) -> list[Row]:
        """Up to ``limit`` rows with a key greater than ``after`` (all rows when None), by key."""
        where: list[str] = []
        params: list[Any] = []
        if after is not None:
            where.append(f"{self.key} > {self.dialect.param}")
            params.append(after)
        if not with_deleted and self.spec.deleted_at is not None:
            where.append(f"{self._quoted(self.spec.deleted_at)} IS NULL")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        sql = f"{self.select}{clause} ORDER BY {self.key} LIMIT {self.dialect.param}"
        return rows(conn.execute(sql, [*params, limit]))

    def key_page(self, conn: DbConnection, after: Any, limit: int) -> list[Any]:
        """Up to ``limit`` keys of live rows greater than ``after`` (from the first when None), by key.

        Selects the key column only: the id listing that finds hard deletes reads no row data.
        """
        where: list[str] = []
        params: list[Any] = []
        if after is not None:
            where.append(f"{self.key} > {self.dialect.param}")
            params.append(after)
        if self.spec.deleted_at is not None:
            where.append(f"{self._quoted(self.spec.deleted_at)} IS NULL")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        sql = f"SELECT {self.key} FROM {self.table}{clause} ORDER BY {self.key} LIMIT {self.dialect.param}"
        return [row[0] for row in conn.execute(sql, [*params, limit]).fetchall()]

    def changes_page(self, conn: DbConnection, low: Stamp | None, low_key: Any, limit: int) -> list[Row]:
        """Up to ``limit`` rows after ``(low, low_key)`` in ``(updated_at, key)`` order.

        ``low_key`` None makes the bound inclusive of ``low``; ``low`` None means every row with a
        timestamp. Rows whose ``updated_at`` is NULL only show up in full listings.
        """
        stamp = self._quoted(self.spec.updated_at)
        p = self.dialect.param
        params: list[Any]
        if low is None:
            where, params = f"{stamp} IS NOT NULL", []
        elif low_key is None:
            where, params = f"{stamp} >= {p}", [low]
        else:
            where, params = f"({stamp} > {p} OR ({stamp} = {p} AND {self.key} > {p}))", [low, low, low_key]
        sql = f"{self.select} WHERE {where} ORDER BY {stamp}, {self.key} LIMIT {p}"
        return rows(conn.execute(sql, [*params, limit]))

    def by_key(self, conn: DbConnection, key: Any) -> Row | None:
        found = rows(conn.execute(f"{self.select} WHERE {self.key} = {self.dialect.param}", [key]))
        return found[0] if found else None

    def by_keys(self, conn: DbConnection, keys: Sequence[Any]) -> list[Row]:
        """Rows with any of ``keys``."""
        return list(self._where_in(conn, self.key, keys))

    def by_folded(self, conn: DbConnection, column: Column, folded: Sequence[str]) -> list[Row]:
        """Live (not soft-deleted) rows whose folded ``column`` is one of ``folded``, each once."""
        target = self.dialect.fold(self.dialect.quote(column.name))
        live = (
            f" AND {self._quoted(self.spec.deleted_at)} IS NULL" if self.spec.deleted_at is not None else ""
        )
        found: dict[Any, Row] = {}
        for row in self._where_in(conn, target, folded, tail=f"{live} ORDER BY {self.key}"):
            found.setdefault(row[self.spec.primary_key.name], row)
        return list(found.values())

    def _where_in(
        self, conn: DbConnection, target: str, values: Sequence[Any], *, tail: str = ""
    ) -> Iterator[Row]:
        """Rows whose ``target`` (a quoted column, or an expression of one) is one of ``values``.

        One ``SELECT ... WHERE target IN (...)`` per ``dialect.chunk_size`` values, the most one
        statement binds on every engine; ``tail`` (more conditions, an ``ORDER BY``) ends each.
        """
        size = self.dialect.chunk_size
        for start in range(0, len(values), size):
            chunk = list(values[start : start + size])
            sql = f"{self.select} WHERE {target} IN ({self.dialect.params(len(chunk))}){tail}"
            yield from rows(conn.execute(sql, chunk))
