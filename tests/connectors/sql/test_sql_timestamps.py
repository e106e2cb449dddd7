"""Timestamp styles: what syncd writes must sort exactly like what the column already holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd_sql._cursor import Resume
from syncd_sql._timestamps import TimestampStyle, capped, parse_timestamp

MOMENT = datetime(2024, 5, 1, 10, 0, 7, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sample", "written"),
    [
        ("2024-01-01 09:00:00", "2024-05-01 10:00:07"),
        ("2024-01-01T09:00:00Z", "2024-05-01T10:00:07Z"),
        ("2024-01-01T09:00:00.5Z", "2024-05-01T10:00:07.1Z"),
        ("2024-01-01T09:00:00.000+00:00", "2024-05-01T10:00:07.123+00:00"),
        ("2024-01-01 09:00:00.000000", "2024-05-01 10:00:07.123456"),
        ("2024-01-01T09:00:00.000000000Z", "2024-05-01T10:00:07.123456000Z"),
        ("2024-01-01T11:00:00+02:00", "2024-05-01T12:00:07+02:00"),
        ("2024-01-01T11:00:00+0200", "2024-05-01T12:00:07+0200"),
        ("2024-01-01T04:00:00-05:00", "2024-05-01T05:00:07-05:00"),
        (1_704_099_600, 1_714_557_607),
        (1_704_099_600_000, 1_714_557_607_123),
        (1_704_099_600.5, 1_714_557_607.123456),
    ],
)
def test_new_stamps_are_written_in_the_style_of_the_sample(sample: object, written: object) -> None:
    style = TimestampStyle.of(sample)
    assert style is not None
    assert style.format(MOMENT) == written


@pytest.mark.parametrize(
    "value", ["Jan 3 2024", "2024-01-03", "10:00:00", "", True, None, b"2024", float("nan"), 1.7e12]
)
def test_values_syncd_cannot_reproduce_have_no_style(value: object) -> None:
    assert TimestampStyle.of(value) is None


@pytest.mark.parametrize(
    ("affinity", "expected"), [("integer", 1_714_557_607), ("real", 1_714_557_607.123456), ("text", None)]
)
def test_empty_column_style_follows_its_declared_type(affinity: str, expected: object) -> None:
    written = TimestampStyle.default_for(affinity).format(MOMENT)
    assert written == (expected if expected is not None else "2024-05-01T10:00:07.123456Z")


def test_naive_text_is_read_as_utc_and_epoch_milliseconds_are_told_from_seconds() -> None:
    assert parse_timestamp("2024-05-01 10:00:07") == datetime(2024, 5, 1, 10, 0, 7, tzinfo=UTC)
    assert parse_timestamp(1_714_557_607) == parse_timestamp(1_714_557_607_000)
    assert parse_timestamp("not a date") is None
    assert parse_timestamp(float("inf")) is None


def test_stamp_after_a_value_in_the_same_second_steps_to_the_next_second() -> None:
    style = TimestampStyle("iso", " ", 0, "")
    assert style.after("2024-05-01 10:00:07", MOMENT) == "2024-05-01 10:00:08"
    assert style.after("2024-05-01 10:00:06", MOMENT) == "2024-05-01 10:00:07"
    assert style.after(None, MOMENT) == "2024-05-01 10:00:07"


def test_stamp_after_a_future_value_steps_past_it_instead_of_going_back() -> None:
    assert TimestampStyle("epoch_millis").after(4_102_444_800_000, MOMENT) == 4_102_444_800_001


def test_an_overlap_bound_truncates_towards_the_past_so_the_window_never_shrinks() -> None:
    overlap = timedelta(seconds=2.5)
    iso = Resume("2024-05-01T10:00:07.999Z", 9, read_at="2024-05-01T10:00:08.000Z")
    assert iso.lower_bound(overlap) == ("2024-05-01T10:00:05.500Z", None)
    assert Resume(1_714_557_607, 9).lower_bound(overlap) == (1_714_557_604, None)
    # Read 2 s after the watermark at one-second precision: still inside a 2.5 s window.
    assert Resume(1_714_557_607, 9, read_at=1_714_557_609).lower_bound(overlap) == (1_714_557_606, None)


def test_cap_brings_a_future_value_back_to_the_limit_in_its_own_style() -> None:
    assert capped("2999-01-01 00:00:00", MOMENT) == "2024-05-01 10:00:07"
    assert capped("2020-01-01 00:00:00", MOMENT) == "2020-01-01 00:00:00"
    assert capped(4_102_444_800, MOMENT) == 1_714_557_607


STYLES = [
    TimestampStyle("iso", " ", 0, ""),
    TimestampStyle("iso", "T", 3, "Z"),
    TimestampStyle("iso", "T", 6, "+00:00"),
    TimestampStyle("iso", "T", 0, "+05:30"),
    TimestampStyle("epoch_seconds"),
    TimestampStyle("epoch_millis"),
    TimestampStyle("epoch_float"),
]

# From 1974: epoch milliseconds below 1e11 (before March 1973) read as seconds by design.
moments = st.datetimes(
    min_value=datetime(1974, 1, 1), max_value=datetime(2999, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=150, deadline=None)
@given(style=st.sampled_from(STYLES), first=moments, second=moments)
def test_written_stamps_sort_like_the_moments_they_stand_for(
    style: TimestampStyle, first: datetime, second: datetime
) -> None:
    early, late = sorted((first, second))
    a, b = style.format(early), style.format(late)
    assert type(a) is type(b)
    assert a <= b  # type: ignore[operator]
    assert TimestampStyle.of(a) == style
    assert style.format(parse_timestamp(a) or MOMENT) == a


@settings(max_examples=150, deadline=None)
@given(style=st.sampled_from(STYLES), previous=moments, now=moments)
def test_a_new_stamp_is_always_later_than_the_previous_one(
    style: TimestampStyle, previous: datetime, now: datetime
) -> None:
    stored = style.format(previous)
    new = style.after(stored, now)
    new_moment, stored_moment = parse_timestamp(new), parse_timestamp(stored)
    assert new_moment is not None
    assert stored_moment is not None
    assert new_moment > stored_moment
    assert new != stored
