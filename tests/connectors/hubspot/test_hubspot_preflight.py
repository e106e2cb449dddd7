"""The HubSpot connector's pre-flight: mapped paths checked against the account's properties."""

from __future__ import annotations

from syncd.connector import PathProblem
from syncd.testing.fakes.hubspot import HubSpotFake
from syncd_hubspot import HubSpotConnector

from .conftest import make_connector


async def test_the_default_contact_paths_pass(connector: HubSpotConnector) -> None:
    paths = ["properties.email", "properties.firstname", "properties.lastname", "properties.phone"]
    assert await connector.preflight("contacts", read=paths, write=paths, key="properties.email") == []


async def test_a_property_that_does_not_exist_is_named_with_a_suggestion(connector: HubSpotConnector) -> None:
    problems = await connector.preflight(
        "contacts", read=["properties.firstnme"], write=["properties.firstnme"], key="properties.email"
    )
    assert problems == [
        PathProblem(
            "properties.firstnme",
            "property 'firstnme' does not exist in HubSpot contacts (did you mean 'firstname'?)",
        )
    ]


async def test_a_property_the_app_does_not_read_and_a_read_only_one_written_are_problems(
    fake: HubSpotFake,
) -> None:
    connector = make_connector(fake, properties=["email", "firstname"])
    try:
        problems = await connector.preflight(
            "contacts",
            read=["properties.lastname", "properties.createdate"],
            write=["properties.createdate"],
            key="properties.email",
        )
    finally:
        await connector.aclose()
    assert problems == [
        PathProblem(
            "properties.lastname",
            "property 'lastname' is not read by this app: add it to its properties setting",
        ),
        PathProblem(
            "properties.createdate",
            "property 'createdate' is not read by this app: add it to its properties setting",
        ),
        PathProblem(
            "properties.createdate",
            "property 'createdate' is read-only in HubSpot: map it with direction = \"in\"",
        ),
    ]


async def test_a_path_outside_properties_and_an_object_not_enabled_are_problems(
    connector: HubSpotConnector,
) -> None:
    assert await connector.preflight("contacts", read=["email"], write=[], key=None) == [
        PathProblem("email", "HubSpot paths look like 'properties.email', not 'email'")
    ]
    assert await connector.preflight("companies", read=["properties.name"], write=[], key=None) == [
        PathProblem(None, "object type 'companies' is not enabled (objects = ['contacts'])")
    ]
