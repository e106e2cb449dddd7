"""The Mailchimp connector's pre-flight: member paths and the audience's merge fields."""

from __future__ import annotations

import httpx
import pytest

from syncd.connector import ConfigError, PathProblem
from syncd.testing.fakes.mailchimp import MailchimpFake

from .conftest import API_KEY, LIST_ID, ConnectorFactory


async def test_member_paths_and_existing_merge_fields_pass(make_connector: ConnectorFactory) -> None:
    paths = ["email_address", "status", "tags", "merge_fields.FNAME", "merge_fields.ADDRESS.city"]
    assert (
        await make_connector().preflight(
            "members", read=[*paths, "last_changed"], write=paths, key="email_address"
        )
        == []
    )


async def test_a_merge_field_that_does_not_exist_is_named_with_a_suggestion(
    make_connector: ConnectorFactory,
) -> None:
    problems = await make_connector().preflight(
        "members", read=["merge_fields.FNAM", "merge_fields.ADDRESS.town"], write=[], key="email_address"
    )
    assert problems == [
        PathProblem(
            "merge_fields.FNAM", f"audience {LIST_ID!r} has no merge field 'FNAM' (did you mean 'FNAME'?)"
        ),
        PathProblem(
            "merge_fields.ADDRESS.town",
            "address merge field 'ADDRESS' has no part 'town' (parts: addr1, addr2, city, state, zip, country)",
        ),
    ]


async def test_member_paths_the_audience_lacks_or_mailchimp_sets_are_problems(
    make_connector: ConnectorFactory,
) -> None:
    problems = await make_connector().preflight(
        "members", read=["email"], write=["last_changed"], key="merge_fields.FNAME"
    )
    assert problems == [
        PathProblem(
            "merge_fields.FNAME", "members are matched by 'email_address' only, not 'merge_fields.FNAME'"
        ),
        PathProblem("email", "members have no 'email' (did you mean 'email_address'?)"),
        PathProblem(
            "last_changed",
            "'last_changed' is set by Mailchimp and cannot be written: map it with direction = \"in\"",
        ),
    ]
    assert await make_connector().preflight("contacts", read=[], write=[], key=None) == [
        PathProblem(None, "Mailchimp audiences hold 'members', not 'contacts': write object = 'members'")
    ]


async def test_a_missing_audience_is_a_settings_error(make_connector: ConnectorFactory) -> None:
    with pytest.raises(ConfigError, match="audience 'nope' does not exist"):
        await make_connector(list_id="nope").preflight("members", read=["email_address"], write=[], key=None)


async def test_merge_fields_are_listed_in_pages_like_every_collection(
    fake: MailchimpFake, make_connector: ConnectorFactory
) -> None:
    for n in range(6, 13):
        fake.add_merge_field(f"MMERGE{n}", f"Field {n}")
    async with httpx.AsyncClient(base_url=fake.url + "/3.0", auth=("any", API_KEY)) as api:
        first = (await api.get(f"/lists/{LIST_ID}/merge-fields")).json()
        rest = (await api.get(f"/lists/{LIST_ID}/merge-fields", params={"offset": 10, "count": 5})).json()
    assert (len(first["merge_fields"]), first["total_items"]) == (10, 12), "the default count is 10"
    assert [f["tag"] for f in rest["merge_fields"]] == ["MMERGE11", "MMERGE12"]
    problems = await make_connector().preflight("members", read=["merge_fields.MMERGE12"], write=[], key=None)
    assert problems == []
