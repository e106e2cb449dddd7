"""The demo's customers: a small, realistic, seeded data set split across HubSpot and Mailchimp.

Real accounts are messy in known ways, and the demo shows syncd coping with each of them:

* customers in one app only, and customers in both (the overlap, matched by email);
* the same address spelt differently: capitals in Mailchimp (HubSpot stores emails lowercased),
  or an invisible zero-width space pasted in with the address;
* names with stray spaces, and phone numbers in different formats (equal once normalised);
* conflicting values: a surname or a phone number that differs between the two apps;
* consent that disagrees: opted in in the CRM, unsubscribed from the list;
* a duplicate inside one app: a second HubSpot contact whose address differs from another only
  by an invisible character, so both have the same natural key.

Everything is drawn from ``random.Random(seed)``: one seed, one data set, byte for byte.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

#: Fictional companies and common mail providers. Mailchimp refuses example.com-style domains.
COMPANY_DOMAINS = (
    "acme.io",
    "globex.com",
    "initech.net",
    "umbrella.co",
    "hooli.xyz",
    "vandelay.com",
    "soylent.org",
    "tyrell.ai",
)
MAIL_DOMAINS = ("gmail.com", "outlook.com", "fastmail.com", "proton.me", "yahoo.com")

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Ana", "Aryan", "Beatriz", "Bo", "Carmen", "Chen", "Chloe", "Dana",
    "Diego", "Elif", "Emeka", "Erik", "Fatima", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan",
    "Jamal", "Jonas", "Kai", "Keiko", "Lars", "Leila", "Liam", "Lucia", "Maya", "Mateo", "Mei",
    "Nadia", "Nikhil", "Noah", "Olga", "Omar", "Pablo", "Priya", "Quinn", "Rafael", "Rosa",
    "Sam", "Sana", "Sofia", "Tariq", "Thea", "Tomas", "Uma", "Vera", "Wei", "Yara", "Yusuf", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Abara", "Berg", "Castillo", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad",
    "Ito", "Jansen", "Kowalski", "Lindqvist", "Lopez", "Mbeki", "Moreau", "Nakamura", "Novak",
    "Okafor", "Olsen", "Park", "Petrov", "Quist", "Rossi", "Santos", "Schmidt", "Silva", "Tanaka",
    "Urban", "Varga", "Weber", "Xu", "Yilmaz", "Zhang",
)  # fmt: skip
#: A name change between the apps (marriage, a typo fixed in one place only).
OTHER_LAST_NAMES = ("Hartley", "Morgan", "Reyes", "Sutter", "Vance")
AREA_CODES = ("212", "312", "415", "503", "617", "720")
#: HubSpot lifecycle stages, weighted; "other" (vendors, partners) is kept off the mailing list.
STAGES = ("subscriber", "lead", "lead", "marketingqualifiedlead", "customer", "customer", "other")
#: The zero-width space a copy from a web page or a document can carry along.
INVISIBLE = "\u200b"

#: HubSpot custom property the example mapping syncs newsletter consent into.
OPT_IN_PROPERTY = "newsletter_opt_in"


@dataclass(frozen=True, slots=True)
class Member:
    """A Mailchimp audience member to seed."""

    email: str
    status: str
    merge_fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class Dataset:
    """What to seed into each fake app, and what was planted in it (for the intro and the tests)."""

    seed: int
    customers: int
    #: HubSpot contacts: property name -> value, in seeding order.
    contacts: list[dict[str, str]]
    members: list[Member]
    #: Canonical emails of customers present in both apps.
    overlap: list[str]
    #: Overlapping customers whose Mailchimp address is spelt with capitals.
    case_variants: list[str]
    #: Overlapping customers whose Mailchimp address carries a zero-width space.
    invisible_variants: list[str]
    #: Overlapping customers whose surname or phone differs between the apps: (email, field).
    conflicts: list[tuple[str, str]]
    #: Overlapping customers opted in in HubSpot but unsubscribed in Mailchimp.
    consent_disagreements: list[str]
    #: Canonical emails held by two HubSpot contacts.
    duplicates: list[str]
    #: Customers in both apps whose lifecycle is "other": the mapping's filter keeps them off the list.
    off_list: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def crm_only(self) -> int:
        return len(self.contacts) - len(self.duplicates) - len(self.overlap)

    @property
    def email_only(self) -> int:
        return len(self.members) - len(self.overlap)


@dataclass
class _Person:
    first: str
    last: str
    email: str
    phone: str
    stage: str
    opt_in: str | None


def _phone_formats(area: str, line: str) -> tuple[str, ...]:
    """One US number written the ways people type it (all equal once in E.164)."""
    return (
        f"({area}) 555-{line}",
        f"{area}-555-{line}",
        f"+1 {area} 555 {line}",
        f"{area}.555.{line}",
        f"+1{area}555{line}",
    )


def _capitalised(email: str) -> str:
    local, _, domain = email.partition("@")
    parts = [p[:1].upper() + p[1:] for p in local.split(".")]
    return ".".join(parts) + "@" + domain[:1].upper() + domain[1:]


def _spaced(name: str, rng: random.Random) -> str:
    """The name with the stray whitespace a hurried form entry leaves."""
    return rng.choice((f" {name}", f"{name} ", f"{name}  ", f"  {name} "))


def _people(rng: random.Random, count: int) -> list[_Person]:
    people: list[_Person] = []
    seen: set[str] = set()
    while len(people) < count:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        domain = rng.choice(COMPANY_DOMAINS if rng.random() < 0.6 else MAIL_DOMAINS)
        base = f"{first}.{last}".lower()
        email = f"{base}@{domain}"
        n = 2
        while email in seen:
            email = f"{base}{n}@{domain}"
            n += 1
        seen.add(email)
        area, line = rng.choice(AREA_CODES), f"{rng.randrange(100):02d}"
        phone = rng.choice(_phone_formats(area, "01" + line))
        opt_in = rng.choice(("true", "true", "false", None))
        people.append(_Person(first, last, email, phone, rng.choice(STAGES), opt_in))
    return people


def _contact(p: _Person, rng: random.Random) -> dict[str, str]:
    props = {
        "email": p.email,
        "firstname": _spaced(p.first, rng) if rng.random() < 0.1 else p.first,
        "lastname": p.last,
        "lifecyclestage": p.stage,
    }
    if rng.random() < 0.8:
        props["phone"] = p.phone
    if p.opt_in is not None:
        props[OPT_IN_PROPERTY] = p.opt_in
    return props


def _status(p: _Person, rng: random.Random) -> str:
    if p.opt_in == "false":
        return "unsubscribed"
    return rng.choice(("subscribed",) * 8 + ("unsubscribed", "pending", "cleaned"))


def build_dataset(seed: int = 1, customers: int = 300) -> Dataset:
    """A data set of ``customers`` people: about 40% only in HubSpot, 25% only in Mailchimp, 35% in both."""
    if customers < 20:
        raise ValueError("the demo needs at least 20 customers to plant every kind of mess")
    rng = random.Random(seed)
    people = _people(rng, customers)
    n_both = round(customers * 0.35)
    n_crm_only = round(customers * 0.40)
    both = people[:n_both]
    crm_only = people[n_both : n_both + n_crm_only]
    email_only = people[n_both + n_crm_only :]

    contacts: list[dict[str, str]] = []
    members: list[Member] = []
    case_variants: list[str] = []
    invisible: list[str] = []
    conflicts: list[tuple[str, str]] = []
    consent: list[str] = []

    for i, p in enumerate(both):
        contact = _contact(p, rng)
        contacts.append(contact)
        address = p.email
        if i % 3 == 0:
            address = _capitalised(p.email)
            case_variants.append(p.email)
        elif i in (1, 2):
            address = p.email + INVISIBLE
            invisible.append(p.email)
        merge = {"FNAME": p.first, "LNAME": p.last}
        if "phone" in contact:
            merge["PHONE"] = _reformatted(contact["phone"], rng)
        if i % 10 == 4:
            merge["LNAME"] = rng.choice(OTHER_LAST_NAMES)
            conflicts.append((p.email, "last_name"))
        elif i % 10 == 7 and "PHONE" in merge:
            area = rng.choice(AREA_CODES)
            merge["PHONE"] = f"({area}) 555-01{rng.randrange(100):02d}"
            conflicts.append((p.email, "phone"))
        status = _status(p, rng)
        if i % 17 == 5:
            contact[OPT_IN_PROPERTY] = "true"
            status = "unsubscribed"
            consent.append(p.email)
        members.append(Member(address, status, merge))

    for p in crm_only:
        contacts.append(_contact(p, rng))

    # The in-app duplicate: a CRM-only customer entered a second time, the address pasted with
    # a zero-width space (HubSpot's own uniqueness check does not see through it).
    original = crm_only[0]
    twin = dict(_contact(original, rng))
    twin["email"] = original.email + INVISIBLE
    twin["firstname"] = original.first
    contacts.append(twin)
    duplicates = [original.email]

    for p in email_only:
        merge = {"FNAME": _spaced(p.first, rng) if rng.random() < 0.1 else p.first, "LNAME": p.last}
        if rng.random() < 0.5:
            merge["PHONE"] = p.phone
        members.append(Member(p.email, _status(p, rng), merge))

    return Dataset(
        seed=seed,
        customers=customers,
        contacts=contacts,
        members=members,
        overlap=[p.email for p in both],
        case_variants=case_variants,
        invisible_variants=invisible,
        conflicts=conflicts,
        consent_disagreements=consent,
        duplicates=duplicates,
        off_list=[p.email for p in both if p.stage == "other"],
    )


def _reformatted(phone: str, rng: random.Random) -> str:
    """The same number in another of the usual formats."""
    digits = "".join(c for c in phone if c.isdigit())[-10:]
    area, line = digits[:3], digits[-4:]
    choices = [f for f in _phone_formats(area, line) if f != phone]
    return rng.choice(choices)
