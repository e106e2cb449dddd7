"""Rate limits: the plan's limit learned from headers is never exceeded; 429s wait for Retry-After.

The fake counts every admitted request on its clock, which is also the connector's clock
(``VirtualTime``), so "requests in any rolling minute" is measured where Zendesk measures it.
"""

from __future__ import annotations

from syncd.testing.conformance import read_pages
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.zendesk import ZendeskFake
from syncd_zendesk import ZendeskConnector

from .conftest import ConnectorFactory, VirtualTime


async def test_the_plans_limit_from_the_headers_is_never_exceeded(
    fake: ZendeskFake, connector: ZendeskConnector, vtime: VirtualTime
) -> None:
    fake.rate_limit = 30  # well below the 200 the connector assumes before Zendesk says
    uid = fake.seed_user(name="Ada", email="ada@lovelace.io")
    for _ in range(100):
        await connector.get("users", [uid])
    assert fake.throttled == 0, "the connector ran into Zendesk's limit instead of pacing itself"
    assert fake.requests_per_minute() <= 30
    assert connector.api.budget.limit == 30
    assert sum(vtime.sleeps) > 60, "100 requests at 30 per minute must have been spread over minutes"


async def test_a_configured_cap_below_the_plan_limit_wins(
    fake: ZendeskFake, make_connector: ConnectorFactory
) -> None:
    uid = fake.seed_user(name="Ada", email="ada@lovelace.io")
    connector = make_connector(requests_per_minute=12)
    for _ in range(40):
        await connector.get("users", [uid])
    assert fake.requests_per_minute() <= 12


async def test_requests_by_other_integrations_this_minute_count_against_the_budget(
    fake: ZendeskFake, connector: ZendeskConnector
) -> None:
    fake.rate_limit = 40
    uid = fake.seed_user(name="Ada", email="ada@lovelace.io")
    fake.spend(35)  # another integration used most of this minute's budget
    for _ in range(30):
        await connector.get("users", [uid])
    assert fake.throttled == 0
    assert fake.requests_per_minute() <= 40


async def test_exports_stay_within_ten_requests_a_minute(
    fake: ZendeskFake, make_connector: ConnectorFactory, clock: FakeClock
) -> None:
    for i in range(30):
        fake.seed_user(name=f"P{i}", email=f"p{i}@lovelace.io")
    clock.advance(61)
    connector = make_connector(export_page_size=1)
    pages = await read_pages(connector, "users", {"start_time": int(clock.now().timestamp()) - 3600})
    assert len([p for p in pages if p.records]) == 30
    assert fake.throttled == 0
    assert fake.requests_per_minute("/api/v2/incremental/") <= 10


async def test_a_429_is_retried_after_its_retry_after(
    fake: ZendeskFake, connector: ZendeskConnector, vtime: VirtualTime
) -> None:
    uid = fake.seed_user(name="Ada", email="ada@lovelace.io")
    fake.inject("429", 2)
    (record,) = await connector.get("users", [uid])
    assert record.id == uid
    assert vtime.sleeps.count(1.0) >= 2, f"Retry-After: 1 was not honoured: {vtime.sleeps}"


async def test_a_limit_lowered_mid_run_is_respected_from_the_next_answer_on(
    fake: ZendeskFake, connector: ZendeskConnector
) -> None:
    uid = fake.seed_user(name="Ada", email="ada@lovelace.io")
    for _ in range(5):
        await connector.get("users", [uid])
    fake.rate_limit = 6  # the account moved to a smaller plan
    for _ in range(20):
        await connector.get("users", [uid])
    assert connector.api.budget.limit == 6
    assert fake.throttled == 0
    assert fake.requests_per_minute() <= 6
