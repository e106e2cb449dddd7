"""The fake's responses and the connector's requests match HubSpot's published OpenAPI documents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openapi_core.validation.request.exceptions import InvalidRequestBody
from openapi_core.validation.response.exceptions import InvalidData

from syncd.connector import WriteItem
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.hubspot import HubSpotFake

from .conftest import TOKEN, make_connector
from .openapi_contract import check_request, check_response

CONTACTS = "/crm/v3/objects/contacts"


class CheckedClient:
    """Sends requests to the fake and validates each response against the OpenAPI document."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.checked: list[tuple[str, str, int]] = []

    async def call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> httpx.Response:
        response = await self.http.request(method, path, params=params, json=json)
        request = response.request
        content = response.content or b""
        check_response(
            method, path, dict(request.url.params), request.content or None, response.status_code, content
        )
        self.checked.append((method, path, response.status_code))
        return response


@pytest.fixture
async def checked(fake: HubSpotFake) -> AsyncIterator[CheckedClient]:
    async with httpx.AsyncClient(base_url=fake.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        yield CheckedClient(http)


async def test_fake_responses_match_the_openapi_documents(
    fake: HubSpotFake, clock: FakeClock, checked: CheckedClient
) -> None:
    call = checked.call
    ada = (
        await call("POST", CONTACTS, json={"properties": {"email": "ada@example.com"}, "associations": []})
    ).json()["id"]
    await call("POST", CONTACTS, json={"properties": {"email": "ada@example.com"}, "associations": []})  # 409
    await call("POST", CONTACTS, json={"properties": {"shoe_size": "1"}, "associations": []})  # 400
    await call("GET", CONTACTS, params={"limit": 1, "properties": "email,phone"})
    await call("GET", f"{CONTACTS}/{ada}", params={"properties": "email"})
    await call("GET", f"{CONTACTS}/ada@example.com", params={"idProperty": "email"})
    await call("GET", f"{CONTACTS}/999999")  # 404
    await call("PATCH", f"{CONTACTS}/{ada}", json={"properties": {"firstname": "Ada"}})
    search = {
        "filterGroups": [],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email"],
        "limit": 1,
        "after": "0",
    }
    await call("POST", f"{CONTACTS}/search", json=search)
    await call("POST", f"{CONTACTS}/search", json={**search, "limit": 500})  # 400
    create = [
        {"properties": {"email": f"p{i}@example.com"}, "associations": [], "objectWriteTraceId": str(i)}
        for i in range(2)
    ]
    created = (await call("POST", f"{CONTACTS}/batch/create", json={"inputs": create})).json()["results"]
    partly_bad = [
        {"properties": {"email": "bad"}, "associations": [], "objectWriteTraceId": "x"},
        {"properties": {"email": "q@example.com"}, "associations": []},
    ]
    await call("POST", f"{CONTACTS}/batch/create", json={"inputs": partly_bad})  # 207
    read: dict[str, Any] = {
        "inputs": [{"id": created[0]["id"]}, {"id": "999999"}],
        "properties": ["email"],
        "propertiesWithHistory": [],
    }
    await call("POST", f"{CONTACTS}/batch/read", json=read)  # 207
    await call("POST", f"{CONTACTS}/batch/read", json={**read, "inputs": read["inputs"][:1]})  # 200
    await call(
        "POST", f"{CONTACTS}/batch/update", json={"inputs": [{"id": ada, "properties": {"lastname": "L"}}]}
    )
    await call(
        "POST",
        f"{CONTACTS}/batch/upsert",
        json={"inputs": [{"id": "u@example.com", "idProperty": "email", "properties": {}}]},
    )
    await call("POST", f"{CONTACTS}/batch/archive", json={"inputs": [{"id": created[1]["id"]}]})
    await call("DELETE", f"{CONTACTS}/{created[0]['id']}")
    await call("GET", CONTACTS, params={"archived": "true", "properties": "email"})
    twin = fake.seed({"email": "ada.twin@example.com"})
    await call("POST", f"{CONTACTS}/merge", json={"primaryObjectId": ada, "objectIdToMerge": twin})
    await call("POST", f"{CONTACTS}/merge", json={"primaryObjectId": ada, "objectIdToMerge": twin})  # 404
    await call("POST", f"{CONTACTS}/gdpr-delete", json={"objectId": ada})
    await call("POST", "/crm/v3/objects/companies", json={"properties": {"name": "Acme"}, "associations": []})
    await call("GET", "/crm/v3/objects/companies")
    await call("GET", "/crm/v3/properties/contacts")
    definition = {
        "name": "syncd_entity_id",
        "label": "syncd",
        "type": "string",
        "fieldType": "text",
        "groupName": "contactinformation",
    }
    await call("POST", "/crm/v3/properties/contacts", json=definition)
    await call("GET", "/crm/v3/properties/contacts/syncd_entity_id")
    statuses = {status for *_, status in checked.checked}
    assert {200, 201, 204, 207, 400, 404, 409} <= statuses


async def test_the_contract_check_catches_a_response_that_breaks_the_document(checked: CheckedClient) -> None:
    with pytest.raises(InvalidData):
        check_response("GET", CONTACTS, {}, None, 200, b'{"results": [{"id": 5}]}')


async def test_connector_requests_match_the_openapi_documents(fake: HubSpotFake, clock: FakeClock) -> None:
    connector = make_connector(fake, page_size=2, search_page_size=2, objects=["contacts", "companies"])
    try:
        await connector.check()
        seeded = [fake.seed({"email": f"p{i}@example.com"}) for i in range(3)]
        fake.seed({"name": "Acme", "domain": "acme.com"}, object="companies")
        listing = [p async for p in connector.read_changes("contacts", None)]
        clock.advance(90)
        fake.edit(seeded[0], {"firstname": "Changed"})
        [p async for p in connector.read_changes("contacts", listing[-1].cursor)]
        [p async for p in connector.read_changes("companies", None)]
        await connector.get("contacts", seeded)
        await connector.find("contacts", "properties.email", ["p1@example.com"])
        await connector.find("companies", "properties.domain", ["acme.com"])
        fake.seed({"email": "taken@example.com"})
        created = await connector.create(
            "contacts",
            [
                WriteItem("a", {"properties": {"email": "new@example.com"}}),
                WriteItem("b", {"properties": {"email": "taken@example.com"}}),
            ],
        )
        (read,) = await connector.get("contacts", [seeded[1]])
        await connector.update(
            "contacts",
            [WriteItem("u", {"properties": {"lastname": "L"}}, id=seeded[1], expected_version=read.version)],
        )
        await connector.delete("contacts", [WriteItem("d", {}, id=seeded[2])])
        assert created[0].record is not None
    finally:
        await connector.aclose()
    gdpr = make_connector(fake, archive_mode="gdpr")
    try:
        await gdpr.delete("contacts", [WriteItem("g", {}, id=seeded[0])])
    finally:
        await gdpr.aclose()

    operations = set()
    for request in fake.captured:
        check_request(request.method, request.path, dict(request.query), request.body or None)
        operations.add((request.method, request.path.replace(seeded[0], "{id}")))
    expected = {
        ("GET", CONTACTS),
        ("POST", f"{CONTACTS}/search"),
        ("POST", f"{CONTACTS}/batch/read"),
        ("POST", f"{CONTACTS}/batch/upsert"),
        ("POST", f"{CONTACTS}/batch/update"),
        ("POST", f"{CONTACTS}/batch/archive"),
        ("POST", f"{CONTACTS}/gdpr-delete"),
        ("GET", "/crm/v3/objects/companies"),
        ("POST", "/crm/v3/objects/companies/search"),
        ("GET", "/crm/v3/properties/contacts/syncd_entity_id"),
        ("POST", "/crm/v3/properties/contacts"),
    }
    assert expected <= operations, f"not exercised: {expected - operations}"


def test_the_contract_check_catches_a_request_that_breaks_the_document() -> None:
    with pytest.raises(InvalidRequestBody):
        check_request("POST", f"{CONTACTS}/search", {}, b'{"filterGroups": [], "limit": "ten"}')
