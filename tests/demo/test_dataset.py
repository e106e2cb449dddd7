"""The demo's seeded customers: deterministic, and every planted kind of mess really is there."""

from __future__ import annotations

from collections import Counter

import pytest

from syncd.demo.dataset import INVISIBLE, build_dataset
from syncd.mapping.transforms import compile_step

EMAIL = compile_step("email")
PHONE = compile_step("e164", "US")


def test_the_same_seed_gives_the_same_dataset_and_another_seed_another() -> None:
    assert build_dataset(3, 120) == build_dataset(3, 120)
    assert build_dataset(3, 120).contacts != build_dataset(4, 120).contacts


def test_overlapping_customers_have_one_canonical_key_in_both_apps() -> None:
    data = build_dataset(1, 300)
    crm_keys = Counter(EMAIL(c["email"]) for c in data.contacts)
    list_keys = Counter(EMAIL(m.email) for m in data.members)
    assert set(crm_keys) & set(list_keys) == set(data.overlap)
    assert len(data.overlap) == 105
    assert data.crm_only + data.email_only + len(data.overlap) == data.customers


def test_planted_spelling_variants_differ_as_text_but_not_as_keys() -> None:
    data = build_dataset(1, 300)
    by_key = {EMAIL(m.email): m.email for m in data.members}
    assert data.case_variants
    assert data.invisible_variants
    for email in data.case_variants:
        assert by_key[email] != email
        assert by_key[email].lower() == email
    for email in data.invisible_variants:
        assert by_key[email] == email + INVISIBLE


def test_the_in_app_duplicate_is_two_hubspot_contacts_with_one_key() -> None:
    data = build_dataset(1, 300)
    crm_keys = Counter(EMAIL(c["email"]) for c in data.contacts)
    assert [k for k, n in crm_keys.items() if n > 1] == data.duplicates
    # HubSpot itself compares emails case-insensitively after trimming: the twin gets past it
    raw = [c["email"].strip().lower() for c in data.contacts]
    assert len(raw) == len(set(raw))


def test_planted_conflicts_still_differ_after_normalisation_and_format_noise_does_not() -> None:
    data = build_dataset(1, 300)
    contacts = {EMAIL(c["email"]): c for c in data.contacts}
    members = {EMAIL(m.email): m for m in data.members}
    conflicting = dict(data.conflicts)
    assert set(conflicting.values()) == {"last_name", "phone"}
    for email in data.overlap:
        contact, member = contacts[email], members[email]
        differs_last = contact["lastname"] != member.merge_fields["LNAME"]
        differs_phone = "phone" in contact and PHONE(contact["phone"]) != PHONE(member.merge_fields["PHONE"])
        assert differs_last == (conflicting.get(email) == "last_name"), email
        assert differs_phone == (conflicting.get(email) == "phone"), email


def test_no_address_uses_a_domain_mailchimp_refuses_as_fake() -> None:
    data = build_dataset(2, 300)
    domains = {EMAIL(m.email).rpartition("@")[2] for m in data.members}
    domains |= {EMAIL(c["email"]).rpartition("@")[2] for c in data.contacts}
    assert not domains & {"example.com", "example.org", "example.net", "test.com"}


def test_a_dataset_too_small_to_plant_everything_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 20"):
        build_dataset(1, 10)
