"""Database dialects: everything that differs between engines, behind one small class.

The connector composes its statements from these hooks — quoting, placeholders, introspection,
transaction control, key folding, error classification — so supporting PostgreSQL means adding a
``PostgresDialect`` here and a branch in ``dialect_for``; no other module names an engine.
The statements themselves stay portable: keyset paging, ``INSERT ... RETURNING``, savepoints.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol
from urllib.parse import quote

from syncd.connector import ConfigError, ConnectorError, PermanentError, TransientError

Affinity = Literal["integer", "real", "text", "blob", "numeric"]


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class DbCursor(Protocol):
    """The part of a DB-API cursor the connector uses."""

    @property
    def description(self) -> Any: ...

    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> list[Any]: ...


class DbConnection(Protocol):
    """The part of a DB-API connection the connector uses (statements run one at a time)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> DbCursor: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Column:
    """One column as the database describes it."""

    name: str
    declared_type: str
    affinity: Affinity
    not_null: bool
    has_default: bool
    #: Position in the table's declared primary key (1-based), 0 if not part of it.
    key_position: int


def fold_key(value: object) -> str | None:
    """The form natural keys are compared in: NFC, trimmed, case-folded (Unicode-aware).

    SQLite's own ``lower()`` and ``trim()`` only know ASCII letters and spaces, which would let
    ``ÉLODIE@x.io`` miss ``élodie@x.io`` and create a duplicate.
    """
    if value is None or isinstance(value, bytes | bytearray | memoryview):
        return None
    return unicodedata.normalize("NFC", str(value)).strip().casefold()


def rows(cursor: DbCursor) -> list[dict[str, Any]]:
    """A cursor's result as a list of ``{column: value}`` dicts."""
    names = [entry[0] for entry in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class Dialect(ABC):
    """What the connector needs to know about one database engine."""

    #: Engine name for messages.
    name: ClassVar[str]
    #: Placeholder for one bound value.
    param: ClassVar[str]
    #: Most values the connector binds in one statement (lookups are chunked to this).
    chunk_size: ClassVar[int] = 500

    def quote(self, identifier: str) -> str:
        """A quoted identifier; names are checked against the schema before they get here."""
        return '"' + identifier.replace('"', '""') + '"'

    def params(self, count: int) -> str:
        return ", ".join([self.param] * count)

    @abstractmethod
    def describe(self) -> str:
        """The database for messages (never includes credentials)."""

    @abstractmethod
    def connect(self, *, create: bool, read_only: bool = False) -> DbConnection:
        """A new autocommit connection; ``create`` allows creating the database itself.

        ``read_only`` connections never create or change anything (pre-flight checks); they raise
        ``ConfigError`` when the database does not exist.
        """

    @abstractmethod
    def exists(self) -> bool:
        """Whether the database itself exists (a SQLite file; a server-side database)."""

    @abstractmethod
    def table_names(self, conn: DbConnection) -> list[str]:
        """Tables and views, sorted, for error messages."""

    @abstractmethod
    def columns(self, conn: DbConnection, table: str) -> list[Column]:
        """The table's columns in order; empty when the table does not exist."""

    @abstractmethod
    def unique_keys(self, conn: DbConnection, table: str) -> list[tuple[str, ...]]:
        """Column sets with a (non-partial) unique constraint or index, the primary key included."""

    @abstractmethod
    def generates_key(self, conn: DbConnection, table: str, column: Column) -> bool:
        """Whether an INSERT that omits ``column`` gets a key value from the database."""

    @abstractmethod
    def create_table(self, conn: DbConnection, table: str, key: str, others: Sequence[str]) -> None:
        """Create a table with a generated integer key and untyped ``others`` columns."""

    @abstractmethod
    def add_column(self, conn: DbConnection, table: str, column: str) -> None:
        """Add an untyped, nullable column."""

    @abstractmethod
    def fold(self, expression: str) -> str:
        """SQL applying :func:`fold_key` to ``expression``."""

    @abstractmethod
    def begin_write(self, conn: DbConnection) -> None:
        """Start a transaction that holds the write lock from its first statement."""

    @abstractmethod
    def in_transaction(self, conn: DbConnection) -> bool:
        """Whether a transaction is open (an engine may abort one on a constraint error)."""

    @abstractmethod
    def item_error(self, exc: Exception) -> PermanentError | None:
        """The per-record error for a statement failure caused by the record's data, else None."""

    @abstractmethod
    def classify(self, exc: Exception) -> ConnectorError | None:
        """The typed error for a driver exception that fails a whole call, None if not a DB error."""


class SqliteDialect(Dialect):
    """SQLite through the standard library's ``sqlite3`` module."""

    name = "sqlite"
    param = "?"

    def __init__(self, path: Path, *, busy_timeout: float) -> None:
        self.path = path
        self.busy_timeout = busy_timeout

    def describe(self) -> str:
        return f"SQLite database {self.path}"

    def exists(self) -> bool:
        return self.path.is_file()

    def connect(self, *, create: bool, read_only: bool = False) -> DbConnection:
        if read_only and not self.exists():
            raise ConfigError(f"sql: the SQLite database file {self.path} does not exist")
        # A URI with mode=rw refuses to create a new empty file when the path is wrong.
        mode = "ro" if read_only else "rwc" if create else "rw"
        uri = f"file:{quote(str(self.path))}?mode={mode}"
        conn = sqlite3.connect(
            uri, uri=True, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        # A text cell that is not valid UTF-8 must not fail the whole listing: decode it keeping
        # the bad bytes as lone surrogates, which the engine quarantines with that one record.
        conn.text_factory = _lenient_text
        try:
            conn.create_function("syncd_fold", 1, fold_key, deterministic=True)
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def table_names(self, conn: DbConnection) -> list[str]:
        cursor = conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
        return [str(row["name"]) for row in rows(cursor)]

    def columns(self, conn: DbConnection, table: str) -> list[Column]:
        cursor = conn.execute(
            'SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid', [table]
        )
        return [
            Column(
                name=str(row["name"]),
                declared_type=str(row["type"] or ""),
                affinity=_affinity(str(row["type"] or "")),
                not_null=bool(row["notnull"]),
                has_default=row["dflt_value"] is not None,
                key_position=int(row["pk"]),
            )
            for row in rows(cursor)
        ]

    def unique_keys(self, conn: DbConnection, table: str) -> list[tuple[str, ...]]:
        declared = sorted(
            (c for c in self.columns(conn, table) if c.key_position), key=lambda c: c.key_position
        )
        keys = [tuple(c.name for c in declared)] if declared else []
        indexes = rows(conn.execute('SELECT name, "unique", partial FROM pragma_index_list(?)', [table]))
        for index in indexes:
            if index["unique"] and not index["partial"]:
                parts = rows(
                    conn.execute("SELECT name FROM pragma_index_info(?) ORDER BY seqno", [index["name"]])
                )
                keys.append(tuple(str(part["name"]) for part in parts))
        return keys

    def generates_key(self, conn: DbConnection, table: str, column: Column) -> bool:
        if column.has_default:
            return True
        # Only a sole "INTEGER PRIMARY KEY" of a rowid table aliases the rowid and is auto-assigned.
        key = [c for c in self.columns(conn, table) if c.key_position]
        if key != [column] or column.declared_type.upper() != "INTEGER":
            return False
        found = rows(conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]))
        ddl = str(found[0]["sql"] or "") if found else ""
        return re.search(r"\bWITHOUT\s+ROWID\b", ddl, re.IGNORECASE) is None

    def create_table(self, conn: DbConnection, table: str, key: str, others: Sequence[str]) -> None:
        columns = [f"{self.quote(key)} INTEGER PRIMARY KEY"] + [self.quote(name) for name in others]
        conn.execute(f"CREATE TABLE IF NOT EXISTS {self.quote(table)} ({', '.join(columns)})")

    def add_column(self, conn: DbConnection, table: str, column: str) -> None:
        conn.execute(f"ALTER TABLE {self.quote(table)} ADD COLUMN {self.quote(column)}")

    def fold(self, expression: str) -> str:
        return f"syncd_fold({expression})"

    def begin_write(self, conn: DbConnection) -> None:
        # IMMEDIATE takes the write lock up front (waiting up to the busy timeout); a deferred
        # transaction that later upgrades can fail with SQLITE_BUSY without waiting at all.
        conn.execute("BEGIN IMMEDIATE")

    def in_transaction(self, conn: DbConnection) -> bool:
        return isinstance(conn, sqlite3.Connection) and conn.in_transaction

    def item_error(self, exc: Exception) -> PermanentError | None:
        if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError):
            return PermanentError(str(exc), detail={"sqlite_error": exc.__class__.__name__})
        if isinstance(exc, OverflowError):
            return PermanentError(f"value out of range: {exc}")
        return None

    def classify(self, exc: Exception) -> ConnectorError | None:
        if not isinstance(exc, sqlite3.Error):
            return None
        message = str(exc)
        lowered = message.lower()
        where = self.describe()
        if "locked" in lowered or "busy" in lowered:
            return TransientError(f"{where} is locked by another writer: {message}")
        if "unable to open" in lowered:
            return ConfigError(f"cannot open {where}: {message} (does the file exist and is it writable?)")
        if "not a database" in lowered or "no such table" in lowered or "no such column" in lowered:
            return ConfigError(f"{where}: {message}")
        if "disk i/o" in lowered or "disk is full" in lowered or "interrupted" in lowered:
            return TransientError(f"{where}: {message}")
        return ConnectorError(f"{where}: {message}", detail={"sqlite_error": exc.__class__.__name__})


def _affinity(declared: str) -> Affinity:
    """SQLite's column affinity rules (https://www.sqlite.org/datatype3.html#determination_of_column_affinity)."""
    upper = declared.upper()
    if "INT" in upper:
        return "integer"
    if "CHAR" in upper or "CLOB" in upper or "TEXT" in upper:
        return "text"
    if "BLOB" in upper or not upper:
        return "blob"
    if "REAL" in upper or "FLOA" in upper or "DOUB" in upper:
        return "real"
    return "numeric"


def dialect_for(url: str, *, busy_timeout: float) -> Dialect:
    """The dialect for a database URL; ConfigError for engines not supported yet."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        prefix = "sqlite:///"
        path = url[len(prefix) :] if url.lower().startswith(prefix) else ""
        if not path:
            raise ConfigError(
                "sql: a SQLite URL looks like sqlite:///relative/app.db or sqlite:////absolute/app.db"
            )
        return SqliteDialect(Path(path).absolute(), busy_timeout=busy_timeout)
    if scheme.startswith("postgres"):
        raise ConfigError("sql: only SQLite databases are supported so far (got a PostgreSQL URL)")
    # Never echo the URL: other engines' URLs carry passwords.
    shown = f"{scheme!r}" if scheme else "none"
    raise ConfigError(f"sql: unsupported database URL scheme {shown}; expected sqlite:///path/to/app.db")
