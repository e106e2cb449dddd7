"""The shipped four-app example (mappings/customers.toml): what each app contributes and receives."""

from __future__ import annotations

import pytest

from syncd.mapping import Mapping, load_mapping

from ._support import KNOWN_APPS, MAPPINGS


@pytest.fixture(scope="module")
def customers() -> Mapping:
    return load_mapping(MAPPINGS / "customers.toml", known_apps=KNOWN_APPS)


def test_single_name_apps_are_split_into_first_and_last_names(customers: Mapping) -> None:
    zendesk_user = {"email": "Ada@Lovelace.io", "name": " Ada  King Lovelace ", "phone": "(415) 555-0100"}
    assert customers.to_canonical("helpdesk", zendesk_user) == {
        "email": "ada@lovelace.io",
        "first_name": "Ada",
        "last_name": "King Lovelace",
        "phone": "+14155550100",
    }
    stripe_customer = {"email": "ada@lovelace.io", "name": "Ada Lovelace", "phone": None}
    assert customers.to_canonical("billing", stripe_customer) == {
        "email": "ada@lovelace.io",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": None,
    }


def test_first_and_last_names_are_joined_into_one_name_for_zendesk_and_stripe(customers: Mapping) -> None:
    canonical = {"email": "ada@lovelace.io", "first_name": "Ada", "last_name": "Lovelace"}
    for app in ("helpdesk", "billing"):
        assert customers.to_remote(app, canonical) == {"email": "ada@lovelace.io", "name": "Ada Lovelace"}
    assert customers.to_remote("billing", {"first_name": "Ada", "last_name": None}) == {"name": "Ada"}


def test_billing_fields_flow_from_stripe_into_crm_properties_only(customers: Mapping) -> None:
    stripe_customer = {
        "email": "ada@lovelace.io",
        "billing": {
            "plan": "Team",
            "status": "past_due",
            "mrr": 30.0,
            "delinquent": True,
            "lifetime_paid": 360.0,
            "currency": "usd",
        },
    }
    canonical = customers.to_canonical("billing", stripe_customer)
    assert {
        k: canonical[k] for k in ("plan", "subscription_status", "mrr", "delinquent", "lifetime_paid")
    } == {
        "plan": "Team",
        "subscription_status": "past_due",
        "mrr": 30.0,
        "delinquent": True,
        "lifetime_paid": 360.0,
    }
    assert customers.to_remote("crm", canonical)["properties"] == {
        "email": "ada@lovelace.io",
        "billing_plan": "Team",
        "subscription_status": "past_due",
        "mrr": "30.0",
        "billing_delinquent": "true",
        "lifetime_paid": "360.0",
    }
    # Nothing billing-related is ever written to Stripe (its billing.* fields are read-only) or read
    # back from the CRM (an edit of the CRM property cannot overwrite Stripe's figures).
    for name in ("plan", "subscription_status", "mrr", "delinquent", "lifetime_paid"):
        assert name not in customers.writable("billing")
        assert name not in customers.readable("crm")


def test_zendesk_organization_is_read_only_and_owns_the_company(customers: Mapping) -> None:
    user = {"email": "ada@lovelace.io", "organization": {"name": "Analytical Engines"}}
    assert customers.to_canonical("helpdesk", user)["company"] == "Analytical Engines"
    assert "company" not in customers.writable("helpdesk")
    assert customers.to_remote("crm", {"company": "Analytical Engines"}) == {
        "properties": {"company": "Analytical Engines"}
    }
    policy = customers.conflict_policy("company")
    assert (policy.policy, policy.owner) == ("owner", "helpdesk")


def test_consent_comes_from_mailchimp_and_is_only_written_to_the_crm(customers: Mapping) -> None:
    assert customers.to_canonical("email", {"status": "unsubscribed"}) == {"subscribed": False}
    assert "subscribed" not in customers.to_canonical("crm", {"properties": {"newsletter_opt_in": "true"}})
    assert customers.to_remote("crm", {"subscribed": False}) == {"properties": {"newsletter_opt_in": "false"}}
    assert customers.is_consent("subscribed")


def test_vendors_and_partners_are_kept_off_the_mailing_list_only(customers: Mapping) -> None:
    vendor = customers.to_canonical("crm", {"properties": {"email": "v@acme.io", "lifecyclestage": "other"}})
    assert not customers.in_scope("email", vendor)
    assert all(customers.in_scope(app, vendor) for app in ("crm", "helpdesk", "billing"))
    assert customers.in_scope("email", {"email": "a@acme.io", "lifecycle": None})
    assert "lifecycle" not in customers.writable("crm")
