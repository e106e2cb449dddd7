"""syncd connector for Mailchimp: the members of one audience (Marketing API v3)."""

from ._config import MailchimpConfig
from ._connector import MailchimpConnector
from ._consent import ConsentRefused
from ._errors import MemberExists
from ._members import normalise_email, subscriber_hash

__all__ = [
    "ConsentRefused",
    "MailchimpConfig",
    "MailchimpConnector",
    "MemberExists",
    "normalise_email",
    "subscriber_hash",
]
