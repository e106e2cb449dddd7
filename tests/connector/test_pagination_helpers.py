"""Pagination helpers: walk every page, stop at the end, refuse to loop."""

from __future__ import annotations

import pytest

from syncd.connector import TransientError
from syncd.connector.pagination import cursor_pages, offset_pages

PAGES: dict[str | None, tuple[list[int], str | None]] = {
    None: ([1, 2], "b"),
    "b": ([3, 4], "c"),
    "c": ([5], None),
}


async def test_cursor_pages_follows_next_tokens_to_the_end() -> None:
    asked: list[str | None] = []

    async def fetch(token: str | None) -> tuple[list[int], str | None]:
        asked.append(token)
        return PAGES[token]

    pages = [page async for page in cursor_pages(fetch)]
    assert pages == [([1, 2], "b"), ([3, 4], "c"), ([5], None)]
    assert asked == [None, "b", "c"]


async def test_cursor_pages_resumes_from_a_start_token() -> None:
    async def fetch(token: str | None) -> tuple[list[int], str | None]:
        return PAGES[token]

    assert [items async for items, _ in cursor_pages(fetch, start="b")] == [[3, 4], [5]]


async def test_a_cursor_returned_twice_raises_instead_of_looping_forever() -> None:
    looping: dict[str | None, tuple[list[int], str | None]] = {
        None: ([1], "a"),
        "a": ([2], "b"),
        "b": ([3], "a"),
    }

    async def fetch(token: str | None) -> tuple[list[int], str | None]:
        return looping[token]

    got: list[list[int]] = []

    async def walk() -> None:
        async for items, _ in cursor_pages(fetch):
            got.append(items)

    with pytest.raises(TransientError, match="pagination loop"):
        await walk()
    assert got == [[1], [2]], "the page that points back is not yielded"


async def test_a_next_token_equal_to_the_start_token_is_a_loop() -> None:
    async def fetch(token: str | None) -> tuple[list[int], str | None]:
        return [1], "same"

    with pytest.raises(TransientError):
        _ = [page async for page in cursor_pages(fetch, start="same")]


async def test_offset_pages_stops_on_a_short_page() -> None:
    data = list(range(7))
    asked: list[tuple[int, int]] = []

    async def fetch(offset: int, count: int) -> tuple[list[int], int | None]:
        asked.append((offset, count))
        return data[offset : offset + count], None

    pages = [page async for page in offset_pages(fetch, page_size=3)]
    assert pages == [([0, 1, 2], 3), ([3, 4, 5], 6), ([6], 7)]
    assert asked == [(0, 3), (3, 3), (6, 3)]


async def test_offset_pages_stops_at_the_reported_total_without_an_extra_request() -> None:
    data = list(range(6))
    asked: list[int] = []

    async def fetch(offset: int, count: int) -> tuple[list[int], int | None]:
        asked.append(offset)
        return data[offset : offset + count], len(data)

    pages = [page async for page in offset_pages(fetch, page_size=3)]
    assert [items for items, _ in pages] == [[0, 1, 2], [3, 4, 5]]
    assert asked == [0, 3]


async def test_offset_pages_of_an_empty_listing_yields_one_empty_page() -> None:
    async def fetch(offset: int, count: int) -> tuple[list[int], int | None]:
        return [], 0

    assert [page async for page in offset_pages(fetch, page_size=10, start=0)] == [([], 0)]


async def test_offset_pages_starts_at_the_given_offset() -> None:
    async def fetch(offset: int, count: int) -> tuple[list[int], int | None]:
        return list(range(offset, min(offset + count, 5))), 5

    assert [items async for items, _ in offset_pages(fetch, page_size=2, start=3)] == [[3, 4]]


async def test_offset_pages_rejects_a_page_size_below_one() -> None:
    async def fetch(offset: int, count: int) -> tuple[list[int], int | None]:
        return [], None

    with pytest.raises(ValueError, match="page_size"):
        _ = [page async for page in offset_pages(fetch, page_size=0)]
