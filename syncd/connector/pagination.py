"""Pagination helpers: walk an app's cursor- or offset-paged listing one page at a time.

They yield each page with the position after it, so a connector can hand the engine a resumable
cursor per page, and they refuse to spin forever when an app returns a cursor it already gave.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from ._errors import TransientError

T = TypeVar("T")


async def cursor_pages(
    fetch: Callable[[str | None], Awaitable[tuple[list[T], str | None]]],
    start: str | None = None,
) -> AsyncIterator[tuple[list[T], str | None]]:
    """Yield ``(items, next_token)`` for each page, calling ``fetch(token)`` until it returns no next token.

    A next token that was already used means the app's pagination is looping: TransientError is
    raised (before yielding that page) rather than walking the same pages forever.
    """
    seen: set[str] = set()
    token = start
    while True:
        if token is not None:
            seen.add(token)
        items, next_token = await fetch(token)
        if next_token is not None and next_token in seen:
            raise TransientError(f"pagination loop: cursor {next_token!r} was returned twice")
        yield items, next_token
        if next_token is None:
            return
        token = next_token


async def offset_pages(
    fetch: Callable[[int, int], Awaitable[tuple[list[T], int | None]]],
    *,
    page_size: int,
    start: int = 0,
) -> AsyncIterator[tuple[list[T], int]]:
    """Yield ``(items, next_offset)`` for each page of ``fetch(offset, page_size)``.

    ``fetch`` returns the page and the total count when the app reports one. The walk stops after
    a short or empty page, or once ``next_offset`` reaches the total.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, not {page_size!r}")
    offset = start
    while True:
        items, total = await fetch(offset, page_size)
        offset += len(items)
        yield items, offset
        if len(items) < page_size or (total is not None and offset >= total):
            return


__all__ = ["cursor_pages", "offset_pages"]
