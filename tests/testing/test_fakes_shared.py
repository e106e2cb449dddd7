"""One clock and one failure vocabulary for every fake (and the conformance kit)."""

from __future__ import annotations

import typing
from datetime import UTC, datetime

import pytest

from syncd.testing import conformance, fakes
from syncd.testing.fakes import FakeClock, to_ms
from syncd.testing.fakes.hubspot import HubSpotFake
from syncd.testing.fakes.mailchimp import MailchimpFake
from syncd.testing.fakes.zendesk import ZendeskFake

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_frozen_clock_stands_still_until_advanced() -> None:
    clock = FakeClock(START, frozen=True)
    assert clock.now() == START
    assert clock.now_ms() == to_ms(START)
    clock.advance(1.5)
    assert clock.now_ms() == to_ms(START) + 1500
    assert clock() == clock.now(), "calling the clock reads it as a datetime"


def test_a_ticking_clock_moves_on_after_every_reading() -> None:
    clock = FakeClock(START, frozen=True, tick=1.0)
    assert [clock().second for _ in range(3)] == [0, 1, 2]
    assert clock.now_ms() == to_ms(START) + 3000


def test_a_running_clock_never_reads_before_its_start_plus_what_was_added() -> None:
    clock = FakeClock(START)
    clock.advance(3600)
    assert clock.now_ms() >= to_ms(START) + 3_600_000


def test_a_naive_start_is_taken_as_utc() -> None:
    assert FakeClock(datetime(2026, 3, 1, 12, 0), frozen=True).now() == START


def test_a_negative_tick_is_refused() -> None:
    with pytest.raises(ValueError, match="tick"):
        FakeClock(START, tick=-1)


def test_the_mailchimp_fake_stamps_changes_with_the_shared_clock() -> None:
    clock = FakeClock(START, frozen=True)
    fake = MailchimpFake(api_key="k-us1", list_ids=["l"], clock=clock)
    fake.seed("ann@example.com")
    clock.advance(90)
    fake.seed("bob@example.com")
    members = [fake.member(email) for email in ("ann@example.com", "bob@example.com")]
    stamps = [member["last_changed"] for member in members if member is not None]
    assert stamps == ["2026-03-01T12:00:00+00:00", "2026-03-01T12:01:30+00:00"]


def test_the_hubspot_and_zendesk_fakes_share_one_clock_type() -> None:
    clock = FakeClock(START, frozen=True)
    assert HubSpotFake(clock=clock).clock is clock
    assert ZendeskFake(clock=clock).clock is clock


def test_the_fakes_and_the_conformance_kit_inject_the_same_failures() -> None:
    assert conformance.FailureKind is fakes.FailureKind
    assert set(typing.get_args(fakes.FailureKind)) == {"429", "500", "timeout"}
