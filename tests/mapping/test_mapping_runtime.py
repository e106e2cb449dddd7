"""What the engine asks of a mapping at run time: translation both ways, keys, scope, policies."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from syncd.mapping import ConflictPolicy, Mapping, load_mapping, parse_mapping

from ._support import KNOWN_APPS, MAPPINGS, build

# A composite natural key: email plus account.
_BASE_COMPOSITE = """
name = "people"
key = ["email", "account"]
[apps.crm]
object = "contacts"
[apps.email]
object = "members"
[fields.email]
transforms = ["email"]
apps.crm = "properties.email"
apps.email = "email_address"
"""

# Ends inside [apps.email], so a test can append [[apps.email.filter]] tables.
_APPS_THEN_FILTERS = """
name = "people"
key = "email"
[apps.crm]
object = "contacts"
[fields.email]
transforms = ["email"]
apps.crm = "properties.email"
apps.email = "email_address"
[apps.email]
object = "members"
"""

# Apps crm and email; the test appends [apps.product].
_THREE_APPS = """
name = "people"
key = "email"
[apps.crm]
object = "contacts"
[apps.email]
object = "members"
[fields.email]
transforms = ["email"]
apps.crm = "properties.email"
apps.email = "email_address"
apps.product = "email"
"""


@pytest.fixture(scope="module")
def contacts() -> Mapping:
    return load_mapping(MAPPINGS / "contacts.toml", known_apps=KNOWN_APPS)


@pytest.fixture(scope="module")
def users() -> Mapping:
    return load_mapping(MAPPINGS / "users.toml", known_apps=KNOWN_APPS)


# --- to_canonical ------------------------------------------------------------------------------


def test_crm_record_is_translated_from_nested_properties(contacts: Mapping) -> None:
    raw = {
        "properties": {
            "email": " Ann@Example.COM ",
            "firstname": "  Ann  Marie ",
            "lastname": "",
            "phone": " (415) 555-0100 ",
            "lifecyclestage": "customer",
            "newsletter_opt_in": "true",
            "hs_object_id": "501",
        },
        "id": "501",
    }
    assert contacts.to_canonical("crm", raw) == {
        "email": "ann@example.com",
        "first_name": "Ann Marie",
        "last_name": None,
        "phone": "+14155550100",
        "lifecycle": "customer",
        "subscribed": True,
    }


def test_absent_paths_are_not_reported_but_present_blanks_are_cleared(contacts: Mapping) -> None:
    raw = {
        "email_address": "ANN@example.com",
        "merge_fields": {"FNAME": "Ann", "PHONE": "   ", "LNAME": None},
    }
    assert contacts.to_canonical("email", raw) == {
        "email": "ann@example.com",
        "first_name": "Ann",
        "last_name": None,
        "phone": None,
    }
    assert "subscribed" not in contacts.to_canonical("email", raw)


def test_one_way_out_fields_are_never_read(users: Mapping) -> None:
    raw = {"properties": {"email": "ada@example.com", "product_signup_date": "1706659200000"}}
    assert users.to_canonical("crm", raw) == {"email": "ada@example.com"}


def test_unsubscribe_status_becomes_false_and_unknown_statuses_stay_text(contacts: Mapping) -> None:
    assert contacts.to_canonical("email", {"status": "unsubscribed"}) == {"subscribed": False}
    assert contacts.to_canonical("email", {"status": "subscribed"}) == {"subscribed": True}
    assert contacts.to_canonical("email", {"status": "cleaned"}) == {"subscribed": "cleaned"}


def test_odd_values_never_raise_and_are_kept_as_they_came(contacts: Mapping) -> None:
    raw = {
        "properties": {
            "email": 42,
            "phone": {"number": "1"},
            "firstname": ["Ann", "Marie"],
            "lifecyclestage": True,
            "newsletter_opt_in": "maybe",
        }
    }
    assert contacts.to_canonical("crm", raw) == {
        "email": 42,
        "phone": {"number": "1"},
        "first_name": ["Ann", "Marie"],
        "lifecycle": True,
        "subscribed": "maybe",
    }
    assert contacts.to_canonical("crm", {"properties": "not a table"}) == {}


def test_full_name_is_split_and_set_fields_are_sorted_and_deduplicated(users: Mapping) -> None:
    raw = {
        "email": "ada@example.com",
        "full_name": "Ada  King Lovelace",
        "plan": "trial",
        "roles": "Admin, billing,admin,,",
        "created_at": "2024-01-31 12:34:56",
        "is_staff": 0,
        "phone": None,
    }
    assert users.to_canonical("product", raw) == {
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "King Lovelace",
        "phone": None,
        "lifecycle": "lead",
        "roles": ["admin", "billing"],
        "signup_date": "2024-01-31",
        "staff": False,
    }


# --- to_remote ---------------------------------------------------------------------------------


def test_to_remote_builds_the_apps_nested_shape(contacts: Mapping) -> None:
    canonical = {
        "email": "ann@example.com",
        "first_name": "Ann Marie",
        "last_name": None,
        "phone": "+14155550100",
        "lifecycle": "customer",
        "subscribed": False,
    }
    assert contacts.to_remote("email", canonical) == {
        "email_address": "ann@example.com",
        "merge_fields": {"FNAME": "Ann Marie", "LNAME": None, "PHONE": "+14155550100"},
        "status": "unsubscribed",
    }
    assert contacts.to_remote("crm", canonical) == {
        "properties": {
            "email": "ann@example.com",
            "firstname": "Ann Marie",
            "lastname": None,
            "phone": "+14155550100",
            "newsletter_opt_in": "false",
        }
    }


def test_to_remote_writes_only_requested_writable_fields(contacts: Mapping) -> None:
    canonical = {"email": "ann@example.com", "phone": "+14155550100", "lifecycle": "customer"}
    assert contacts.to_remote("crm", canonical, ["phone", "lifecycle", "no_such_field"]) == {
        "properties": {"phone": "+14155550100"}
    }
    assert contacts.to_remote("crm", canonical, []) == {}


def test_to_remote_leaves_out_fields_missing_from_the_canonical_record(contacts: Mapping) -> None:
    assert contacts.to_remote("email", {"email": "ann@example.com"}) == {"email_address": "ann@example.com"}


def test_join_name_writes_one_app_value_from_two_canonical_fields(users: Mapping) -> None:
    canonical = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}
    assert users.to_remote("product", canonical) == {"email": "ada@example.com", "full_name": "Ada Lovelace"}
    assert users.to_remote("product", canonical, ["last_name"]) == {"full_name": "Ada Lovelace"}
    assert users.to_remote("product", {"first_name": "Ada", "last_name": None}) == {"full_name": "Ada"}


def test_set_fields_and_dates_are_written_in_each_apps_format(users: Mapping) -> None:
    canonical = {"roles": ["admin", "billing"], "signup_date": "2024-01-31", "lifecycle": "lead"}
    assert users.to_remote("crm", canonical) == {
        "properties": {
            "product_roles": "admin;billing",
            "product_signup_date": "1706659200000",
            "lifecyclestage": "lead",
        }
    }
    assert users.to_remote("product", canonical) == {"roles": "admin,billing"}


def test_a_record_written_and_read_back_gives_the_same_canonical_values(users: Mapping) -> None:
    canonical = {
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+14155550100",
        "lifecycle": "customer",
        "roles": ["admin", "billing"],
    }
    for app in users.apps:
        echoed = users.to_canonical(app, users.to_remote(app, canonical))
        assert {k: canonical[k] for k in echoed} == echoed
        assert set(echoed) == set(users.readable(app)) & set(users.writable(app)) & set(canonical)


# --- keys, scope, metadata ---------------------------------------------------------------------


def test_key_of_normalises_variants_of_one_address_to_one_key(contacts: Mapping) -> None:
    variants = ["ann@example.com", " ANN@Example.com", "ＡＮＮ＠example.com", "ann\u200b@example.com"]
    assert {contacts.key_of({"email": v}) for v in variants} == {"ann@example.com"}


def test_key_of_is_none_when_a_key_part_is_empty(contacts: Mapping) -> None:
    assert contacts.key_of({"email": None}) is None
    assert contacts.key_of({"email": "  "}) is None
    assert contacts.key_of({}) is None


def test_composite_keys_join_their_parts_with_unit_separator() -> None:
    mapping = build(
        """
[fields.account]
transforms = ["trim", "lower"]
apps.crm = "properties.account"
apps.email = "merge_fields.ACCOUNT"
""",
        base=_BASE_COMPOSITE,
    )
    assert mapping.key_fields == ("email", "account")
    assert mapping.key_of({"email": "A@x.io", "account": " ACME "}) == "a@x.io\x1facme"
    assert mapping.key_of({"email": "a@x.io", "account": None}) is None


def test_key_path_names_the_key_fields_path_in_each_app(contacts: Mapping, users: Mapping) -> None:
    assert contacts.key_path("crm") == "properties.email"
    assert contacts.key_path("email") == "email_address"
    assert users.key_path("product") == "email"


def test_filters_decide_which_records_take_part_in_an_app(contacts: Mapping, users: Mapping) -> None:
    assert contacts.in_scope("email", {"lifecycle": "lead"})
    assert not contacts.in_scope("email", {"lifecycle": "other"})
    assert contacts.in_scope("email", {}), "an empty field is not in the excluded list"
    assert contacts.in_scope("crm", {"lifecycle": "other"}), "crm has no filter"
    assert not users.in_scope("crm", {"staff": True})
    assert users.in_scope("crm", {"staff": False})
    assert users.in_scope("crm", {})


def test_filters_on_set_fields_test_membership_with_canonical_values() -> None:
    mapping = build(
        """
[[apps.email.filter]]
field = "tags"
op = "in"
value = ["VIP", "partner"]
[[apps.email.filter]]
field = "tags"
op = "ne"
value = "Blocked"

[fields.tags]
kind = "set"
transforms = ["lower"]
apps.crm = { path = "properties.tags", inbound = [{ split = ";" }], outbound = [{ join = ";" }] }
""",
        base=_APPS_THEN_FILTERS,
    )
    assert mapping.in_scope("email", {"tags": ["beta", "vip"]})
    assert not mapping.in_scope("email", {"tags": ["beta"]})
    assert not mapping.in_scope("email", {"tags": ["blocked", "vip"]})
    assert not mapping.in_scope("email", {"tags": None})


@pytest.mark.parametrize(
    ("op", "value", "record", "expected"),
    [
        ("eq", '"ANN@Example.com"', {"email": "ann@example.com"}, True),
        ("eq", "1", {"email": True}, False),
        ("present", None, {"email": "a@x.io"}, True),
        ("present", None, {"email": None}, False),
        ("absent", None, {}, True),
        ("not_in", '["a@x.io"]', {"email": "b@x.io"}, True),
    ],
)
def test_scalar_filter_ops(op: str, value: str | None, record: dict[str, object], expected: bool) -> None:
    value_line = "" if value is None else f"value = {value}\n"
    mapping = build(
        f'[[apps.email.filter]]\nfield = "email"\nop = "{op}"\n{value_line}', base=_APPS_THEN_FILTERS
    )
    assert mapping.in_scope("email", record) is expected


def test_mapping_metadata(contacts: Mapping) -> None:
    assert contacts.name == "contacts"
    assert contacts.source == str(MAPPINGS / "contacts.toml")
    assert contacts.apps == ("crm", "email")
    assert contacts.fields == ("email", "first_name", "last_name", "phone", "lifecycle", "subscribed")
    assert contacts.key_fields == ("email",)
    assert contacts.object_of("crm") == "contacts"
    assert contacts.object_of("email") == "members"
    assert contacts.readable("crm") == contacts.fields
    assert contacts.writable("crm") == ("email", "first_name", "last_name", "phone", "subscribed")
    assert contacts.readable("email") == ("email", "first_name", "last_name", "phone", "subscribed")
    assert contacts.is_consent("subscribed")
    assert not contacts.is_consent("email")
    assert contacts.kind("email") == "scalar"
    assert (contacts.initial_conflict, contacts.delete_policy, contacts.mass_delete_threshold) == (
        "review",
        "archive",
        0.2,
    )


def test_conflict_policies_per_field_and_inherited(contacts: Mapping, users: Mapping) -> None:
    assert contacts.conflict_policy("email") == ConflictPolicy("priority", None, ("crm", "email"))
    assert contacts.conflict_policy("phone") == ConflictPolicy("newest", None, ("crm", "email"))
    assert users.conflict_policy("lifecycle") == ConflictPolicy("owner", "product", ("product", "crm"))
    assert users.kind("roles") == "set"


def test_defaults_when_conflict_and_delete_are_not_declared() -> None:
    mapping = build()
    assert mapping.conflict_policy("email") == ConflictPolicy("review", None, ("crm", "email"))
    assert (mapping.initial_conflict, mapping.delete_policy, mapping.mass_delete_threshold) == (
        "review",
        "unlink",
        0.5,
    )


def test_a_field_priority_list_covering_its_readers_is_completed_with_the_other_apps() -> None:
    mapping = build(
        """
[apps.product]
object = "users"
[fields.plan]
conflict = { policy = "priority", priority = ["product", "crm"] }
apps.crm = "properties.plan"
apps.product = "plan"
""",
        base=_THREE_APPS,
    )
    assert mapping.conflict_policy("plan").priority == ("product", "crm", "email")


def test_the_compiled_mapping_is_immutable(contacts: Mapping) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        contacts.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        contacts.app_specs["x"] = contacts.app_specs["crm"]  # type: ignore[index]


def test_unknown_app_or_field_is_a_key_error_naming_the_mapping(contacts: Mapping) -> None:
    with pytest.raises(KeyError, match="mapping 'contacts' has no app 'zendesk'"):
        contacts.to_canonical("zendesk", {})
    with pytest.raises(KeyError, match="mapping 'contacts' has no field 'nope'"):
        contacts.kind("nope")


def test_a_value_typed_by_an_admin_is_normalised_or_refused_never_passed_through() -> None:
    mapping = parse_mapping(
        textwrap.dedent(
            """
        name = "people"
        key = "email"
        [apps.a]
        object = "contacts"
        [apps.b]
        object = "contacts"
        [fields.email]
        transforms = ["email"]
        apps.a = "email"
        apps.b = "email"
        [fields.phone]
        transforms = [{ e164 = "US" }]
        apps.a = "phone"
        apps.b = "phone"
        [fields.tags]
        kind = "set"
        transforms = ["lower"]
        apps.a = "tags"
        apps.b = "tags"
        """
        )
    )
    assert mapping.admin_value("phone", "(503) 555-0199") == "+15035550199"
    assert mapping.admin_value("email", " Ann@Acme.IO ") == "ann@acme.io"
    assert mapping.admin_value("tags", ["VIP", "b", "vip"]) == ["b", "vip"]
    assert mapping.admin_value("phone", "  ") is None
    with pytest.raises(ValueError, match="'call me' is not a phone number"):
        mapping.admin_value("phone", "call me")
    with pytest.raises(ValueError, match="is not an email address"):
        mapping.admin_value("email", "ann at acme")
