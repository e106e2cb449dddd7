"""What the connector knows of its address book from its own reads, so ``find`` needs no server scan.

Before creating records the engine looks their natural keys up (``find``), so that a card someone
made meanwhile is linked rather than duplicated. Asked as addressbook-query REPORTs, that costs the
server a scan (and a parse) of every card for each batch of keys. But the connector has usually
just listed the whole book in the same run: the index keeps, per card, its ETag and the values
``find`` matches on (every email, the UID), from a complete listing on, together with the sync
token it is valid at (ETag mode: the ETags themselves are the reference).

A lookup first catches up with one request (sync-collection since the token, or an ETag listing),
fetches only the cards whose ETag differs from the one the index holds, then answers from memory;
only the cards that match are fetched. The connector's own writes are entered with the ETag the
server returned, so a catch-up does not fetch them again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


def lookup_keys(fields: Mapping[str, Any]) -> frozenset[str]:
    """The values ``find`` can match a card on, trimmed and lower case (emails and UID)."""
    values = [entry.get("value") for entry in fields.get("emails") or [] if isinstance(entry, Mapping)]
    values += [fields.get("email"), fields.get("uid")]
    return frozenset(v.strip().lower() for v in values if isinstance(v, str) and v.strip())


@dataclass
class BookIndex:
    """Cards of one address book by name: their ETag and lookup keys, valid at ``token``."""

    collection: str
    #: The sync token the entries are complete at; None when the book is compared by ETags.
    token: str | None
    entries: dict[str, tuple[str | None, frozenset[str]]] = field(default_factory=dict)

    def put(self, name: str, etag: str | None, fields: Mapping[str, Any]) -> None:
        self.entries[name] = (etag, lookup_keys(fields))

    def drop(self, names: Iterable[str]) -> None:
        for name in names:
            self.entries.pop(name, None)

    def stale(self, current: Mapping[str, str | None]) -> list[str]:
        """Names in ``current`` (name -> ETag) whose ETag the index does not hold."""
        out = []
        for name, etag in current.items():
            known = self.entries.get(name)
            if etag is None or known is None or known[0] != etag:
                out.append(name)
        return sorted(out)

    def matching(self, wanted: set[str]) -> list[str]:
        """Names of the cards with any of the ``wanted`` keys (already trimmed, lower case)."""
        return sorted(name for name, (_, keys) in self.entries.items() if keys & wanted)


__all__ = ["BookIndex", "lookup_keys"]
