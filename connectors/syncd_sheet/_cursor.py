"""Cursors: the file's signature and a short digest of every row, to diff the next read against.

A cursor looks like ``{"v": 1, "file": {"inode": .., "size": .., "mtime_ns": .., "racy": false},
"rows": {"<id>": "<12 hex digits of the row's version>", ...}}``, about 55 bytes per row.

``file`` lets a poll skip the parse when the file has not changed; it is ``None`` in the cursors
of a read's intermediate pages (their ``rows`` hold only what was returned so far, so resuming
from one parses the file and returns the rest). ``racy`` is set when the file was modified within
two seconds of the read: the file system's timestamps are too coarse to prove that a second edit
in that window changed the signature, so the next read parses anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from syncd.connector import Cursor

from ._files import FileSig

CURSOR_VERSION = 1
#: Hex digits of a row's version kept in a cursor.
DIGEST_LENGTH = 12


@dataclass(frozen=True, slots=True)
class Resume:
    """A parsed cursor. ``sig`` None means the file must be read."""

    sig: FileSig | None
    racy: bool
    rows: dict[str, str]

    def unchanged(self, current: FileSig) -> bool:
        """True if ``current`` proves the file is the one this cursor describes."""
        return self.sig is not None and not self.racy and self.sig == current


def digest(version: str | None) -> str:
    return (version or "")[:DIGEST_LENGTH]


def make_cursor(sig: FileSig | None, racy: bool, rows: Mapping[str, str]) -> Cursor:
    file: dict[str, Any] | None = None
    if sig is not None:
        file = {"inode": sig.inode, "size": sig.size, "mtime_ns": sig.mtime_ns, "racy": racy}
    return {"v": CURSOR_VERSION, "file": file, "rows": dict(rows)}


def parse_cursor(cursor: Cursor) -> Resume:
    """The cursor's content; a cursor this version cannot read resumes as "everything changed"."""
    rows = cursor.get("rows")
    if cursor.get("v") != CURSOR_VERSION or not isinstance(rows, dict):
        return Resume(None, False, {})
    clean = {str(k): str(v) for k, v in rows.items()}
    file = cursor.get("file")
    sig = None
    racy = False
    if isinstance(file, dict):
        try:
            sig = FileSig(int(file["inode"]), int(file["size"]), int(file["mtime_ns"]))
            racy = bool(file.get("racy", True))
        except (KeyError, TypeError, ValueError):
            sig = None
    return Resume(sig, racy, clean)


__all__ = ["CURSOR_VERSION", "DIGEST_LENGTH", "Resume", "digest", "make_cursor", "parse_cursor"]
