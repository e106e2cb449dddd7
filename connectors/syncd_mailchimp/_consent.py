"""The consent rule for a member's ``status``: an unsubscribe always wins.

``status`` records whether a person agreed to receive marketing email. syncd never moves a
member from ``unsubscribed`` or ``cleaned`` back to ``subscribed`` — nor to ``pending``, which
would email them a confirmation they did not ask for — whatever another app says. Such a write
is refused with ``ConsentRefused`` (a PermanentError: dead-lettered and visible, replayable
without the status) rather than silently rewritten, because a sync cannot know that the person
consented again; only the person can, through a Mailchimp signup form.
"""

from __future__ import annotations

from syncd.connector import PermanentError

#: Statuses a client may write (``archived`` is what a delete does).
WRITABLE_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
#: Statuses only the person can leave.
OPTED_OUT = ("unsubscribed", "cleaned")
#: Statuses that would put an opted-out person back on the marketing list.
OPTING_IN = ("subscribed", "pending")


class ConsentRefused(PermanentError):
    """A write would have re-subscribed a member who unsubscribed or bounced."""


def status_to_write(member_id: str, current: str | None, wanted: object) -> str | None:
    """The status to send for a member now ``current`` (None: a new member); None if unchanged.

    Raises PermanentError for a status that cannot be written and ConsentRefused for a
    re-subscription.
    """
    if wanted not in WRITABLE_STATUSES:
        raise PermanentError(
            f"mailchimp: status {wanted!r} cannot be written (expected one of {', '.join(WRITABLE_STATUSES)}; "
            "deleting a record archives it)"
        )
    assert isinstance(wanted, str)
    if wanted == current:
        return None
    if current in OPTED_OUT and wanted in OPTING_IN:
        raise ConsentRefused(
            f"mailchimp: member {member_id} is {current}; syncd never changes an {current} member to "
            f"{wanted} through the API (an unsubscribe always wins). The person can re-subscribe through "
            "a Mailchimp signup form; write the record without 'status' to sync its other fields."
        )
    return wanted
