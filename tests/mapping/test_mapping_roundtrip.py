"""Two-way fields must survive app -> canonical -> app; lossy ones are flagged at load time."""

from __future__ import annotations

import pytest

from syncd.mapping.roundtrip import app_probes

from ._support import build, problems_of

LOSSY_MAP = """
[fields.lifecycle]
apps.crm = "properties.lifecyclestage"
[fields.lifecycle.apps.email]
path = "merge_fields.PLAN"
direction = "{direction}"
inbound = [{{ map = {{ free = "lead", trial = "lead", paid = "customer" }} }}]
{outbound}
"""


def test_many_to_one_map_used_two_way_is_flagged() -> None:
    found = problems_of(
        LOSSY_MAP.format(
            direction="both", outbound='outbound = [{ map = { lead = "trial", customer = "paid" } }]'
        )
    )
    assert found == [
        "test.toml: fields.lifecycle.apps.email: two-way field is not round-trip stable: app value 'free'"
        " -> canonical 'lead' -> app value 'trial'; declare the field one-way"
        ' (direction = "in" or "out") or fix the map'
    ]


def test_the_same_lossy_map_declared_one_way_is_accepted() -> None:
    mapping = build(LOSSY_MAP.format(direction="in", outbound=""))
    assert mapping.readable("email") == ("email", "lifecycle")
    assert mapping.writable("email") == ("email",)


def test_an_outbound_map_declared_out_only_is_accepted() -> None:
    build(
        """
[fields.lifecycle]
apps.crm = "properties.lifecyclestage"
apps.email = { path = "merge_fields.PLAN", direction = "out", outbound = [{ map = { lead = "trial", x = "trial" } }] }
"""
    )


def test_a_one_to_one_map_is_round_trip_stable() -> None:
    build(
        """
[fields.lifecycle]
apps.crm = "properties.lifecyclestage"
[fields.lifecycle.apps.email]
path = "merge_fields.STATUS"
inbound = [{ map = { active = "customer", trial = "lead" } }]
outbound = [{ map = { customer = "active", lead = "trial" } }]
"""
    )


def test_an_outbound_map_sending_two_canonical_values_to_one_app_value_is_flagged() -> None:
    found = problems_of(
        """
[fields.lifecycle]
apps.crm = "properties.lifecyclestage"
[fields.lifecycle.apps.email]
path = "merge_fields.STATUS"
inbound = [{ map = { active = "customer", trial = "lead" } }]
outbound = [{ map = { customer = "active", lead = "trial", subscriber = "trial" } }]
"""
    )
    assert len(found) == 1
    assert "canonical 'subscriber' -> app value 'trial' -> canonical 'lead'" in found[0]


def test_a_map_with_a_default_used_two_way_is_flagged() -> None:
    found = problems_of(
        """
[fields.tier]
apps.crm = "properties.tier"
[fields.tier.apps.email]
path = "merge_fields.TIER"
inbound = [{ map = { values = { gold = "gold", silver = "silver" }, default = "bronze" } }]
"""
    )
    assert len(found) == 1
    assert "app value 'Hello World' -> canonical 'bronze' -> app value 'bronze'" in found[0]


@pytest.mark.parametrize("transform", ["lower", "title", "upper"])
def test_case_folding_inbound_only_is_flagged(transform: str) -> None:
    found = problems_of(
        f"""
[fields.city]
apps.crm = "properties.city"
apps.email = {{ path = "merge_fields.CITY", inbound = ["{transform}"] }}
"""
    )
    assert len(found) == 1
    assert found[0].startswith("test.toml: fields.city.apps.email: two-way field is not round-trip stable")
    assert "or add the same normalisation to fields.city.transforms" in found[0]


def test_case_folding_declared_as_the_canonical_form_is_accepted() -> None:
    build(
        """
[fields.city]
transforms = ["lower"]
apps.crm = "properties.city"
apps.email = { path = "merge_fields.CITY", inbound = ["lower"] }
"""
    )


def test_asymmetric_date_formats_are_flagged_and_symmetric_ones_accepted() -> None:
    template = """
[fields.birthday]
apps.crm = "properties.birthday"
[fields.birthday.apps.email]
path = "merge_fields.BIRTHDAY"
inbound = [{{ date = {{ input = "%m/%d/%Y", output = "%Y-%m-%d" }} }}]
outbound = [{{ date = {{ input = "%Y-%m-%d", output = "{output}" }} }}]
"""
    build(template.format(output="%m/%d/%Y"))
    found = problems_of(template.format(output="%d/%m/%Y"))
    assert len(found) == 1
    assert "app value '01/31/2024' -> canonical '2024-01-31' -> app value '31/01/2024'" in found[0]


def test_epoch_dates_written_back_as_text_are_stable() -> None:
    build(
        """
[fields.signup]
apps.email = "merge_fields.SIGNUP"
[fields.signup.apps.crm]
path = "properties.signup_date"
inbound = [{ date = { input = "epoch_ms" } }]
outbound = [{ date = { input = "iso", output = "epoch_ms" } }, "str"]
"""
    )


def test_split_and_join_with_different_separators_are_flagged() -> None:
    found = problems_of(
        """
[fields.tags]
kind = "set"
apps.email = "tags"
apps.crm = { path = "properties.tags", inbound = [{ split = ";" }], outbound = [{ join = "," }] }
"""
    )
    assert len(found) == 1
    assert "app value 'alpha;beta' -> canonical ['alpha', 'beta'] -> app value 'alpha,beta'" in found[0]


def test_a_default_on_the_way_out_is_flagged_because_a_clear_comes_back_as_a_value() -> None:
    found = problems_of(
        """
[fields.first_name]
apps.crm = "properties.firstname"
apps.email = { path = "merge_fields.FNAME", outbound = [{ default = "Friend" }] }
"""
    )
    assert len(found) == 1
    assert "app value None -> canonical None -> app value 'Friend'" in found[0]


def test_a_constant_on_a_two_way_field_is_flagged() -> None:
    found = problems_of(
        """
[fields.source]
apps.crm = "properties.source"
apps.email = { path = "merge_fields.SOURCE", inbound = [{ constant = "newsletter" }] }
"""
    )
    assert len(found) == 1


def test_canonical_normalisation_differences_are_not_reported() -> None:
    build(
        """
[fields.phone]
transforms = [{ e164 = "US" }]
apps.crm = { path = "properties.phone", inbound = ["trim"] }
apps.email = "merge_fields.PHONE"
"""
    )


def test_number_coercion_compared_as_text_is_stable() -> None:
    build(
        """
[fields.seats]
apps.crm = "properties.seats"
apps.email = { path = "merge_fields.SEATS", inbound = ["int"], outbound = ["str"] }
"""
    )


def test_split_name_and_join_name_round_trip_a_full_name() -> None:
    build(
        """
[fields.first_name]
apps.crm = "properties.firstname"
[fields.first_name.apps.email]
path = "merge_fields.NAME"
inbound = [{ split_name = "first" }]
outbound = [{ join_name = ["first_name", "last_name"] }]

[fields.last_name]
apps.crm = "properties.lastname"
[fields.last_name.apps.email]
path = "merge_fields.NAME"
inbound = [{ split_name = "last" }]
outbound = [{ join_name = ["first_name", "last_name"] }]
"""
    )


def test_consent_mapped_to_and_from_status_words_is_stable() -> None:
    build(
        """
[fields.subscribed]
consent = true
transforms = ["bool"]
apps.crm = { path = "properties.newsletter_opt_in", outbound = ["str"] }
[fields.subscribed.apps.email]
path = "status"
inbound = [{ map = { subscribed = true, unsubscribed = false } }]
outbound = [{ map = { true = "subscribed", false = "unsubscribed" } }]
"""
    )


def test_probes_include_map_keys_and_samples_in_the_input_format() -> None:
    mapping = build(
        """
[fields.lifecycle]
apps.crm = "properties.lifecyclestage"
[fields.lifecycle.apps.email]
path = "merge_fields.STATUS"
direction = "in"
inbound = [{ map = { active = "customer" } }]

[fields.birthday]
apps.email = { path = "merge_fields.BIRTHDAY", direction = "in", inbound = [{ date = { input = "%m/%d/%Y" } }] }
"""
    )
    lifecycle = mapping.field_specs["lifecycle"]
    assert "active" in app_probes(lifecycle, lifecycle.apps["email"])
    birthday = mapping.field_specs["birthday"]
    assert {"01/31/2024", "07/04/2023"} <= set(app_probes(birthday, birthday.apps["email"]))
    for probe in (None, "", "Hello World"):
        assert probe in app_probes(birthday, birthday.apps["email"])
