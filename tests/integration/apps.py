"""The two fake apps of the HubSpot ↔ Mailchimp tests, set up as the example mapping expects."""

from __future__ import annotations

from syncd.testing.fakes.hubspot import HubSpotFake, PropertyDef
from syncd.testing.fakes.mailchimp import MailchimpFake

LIST_ID = "a1b2c3d4e5"
API_KEY = "0123456789abcdef0123456789abcdef-us1"
#: The HubSpot properties mappings/contacts.toml reads.
PROPERTIES = ["email", "firstname", "lastname", "phone", "lifecyclestage", "newsletter_opt_in"]


def hubspot_fake(token: str, client_secret: str = "hubspot-test-secret") -> HubSpotFake:
    """A HubSpot fake with the custom ``newsletter_opt_in`` checkbox the example mapping writes."""
    fake = HubSpotFake(token=token, client_secret=client_secret)
    fake.add_property(
        PropertyDef(
            "newsletter_opt_in",
            "Newsletter",
            type="bool",
            field_type="booleancheckbox",
            options=("true", "false"),
            hubspot_defined=False,
        )
    )
    return fake


def mailchimp_fake() -> MailchimpFake:
    return MailchimpFake(api_key=API_KEY, list_ids=(LIST_ID,))


def hubspot_emails(fake: HubSpotFake) -> dict[str, str]:
    """Live contacts by lower-cased email → id."""
    return {str(fake.record(r)["properties"]["email"]).lower(): r for r in fake.live_ids()}


def mailchimp_emails(fake: MailchimpFake) -> list[str]:
    """Lower-cased emails of the audience's members that are not archived (duplicates kept)."""
    return [m.email.lower() for m in fake.audience(LIST_ID).members.values() if m.status != "archived"]
