"""Settings of the Mailchimp connector, and the API root they imply."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr

from syncd.connector import ConfigError, ConnectorConfig
from syncd.connector.webhooks import WebhookSecret

_DATA_CENTRE = re.compile(r"^[a-z]+\d+$")


class MailchimpConfig(ConnectorConfig):
    """How to reach one audience (list) and how to write to it.

    ``status_if_new`` is the status given to members syncd creates when the record carries no
    ``status``. It defaults to ``pending`` (Mailchimp sends one double opt-in email) so that
    nobody is subscribed without having consented; set ``subscribed`` only if the source app
    records consent itself.
    """

    #: ``<key>-<dc>``: the data centre after the last ``-`` picks ``https://<dc>.api.mailchimp.com``.
    api_key: SecretStr
    #: The audience (list) id whose members are synced.
    list_id: str = Field(min_length=1)
    #: API root override (a fake or a proxy); ``/3.0`` is appended when missing.
    base_url: str | None = None
    #: Members per listing request (Mailchimp allows at most 1000).
    page_size: int = Field(default=500, ge=1, le=1000)
    #: Secret expected in the webhook URL's query (``?secret=...``); webhooks are refused without it.
    webhook_secret: WebhookSecret | None = None
    #: Secrets still accepted while a new ``webhook_secret`` is being rolled out.
    previous_webhook_secrets: list[WebhookSecret] = Field(default_factory=list)
    #: ``archive`` keeps the contact's history (it can be re-added); ``permanent`` erases it for good.
    delete_mode: Literal["archive", "permanent"] = "archive"
    status_if_new: Literal["pending", "subscribed", "unsubscribed", "transactional"] = "pending"
    #: Incremental reads start this many seconds before the last change seen (never less than 1 s).
    overlap_seconds: float = Field(default=300.0, ge=0)
    #: Simultaneous requests (Mailchimp allows 10 per account, shared with other integrations).
    max_connections: int = Field(default=5, ge=1, le=10)
    #: Per-request timeout; Mailchimp itself gives up on a call after 120 s.
    timeout_seconds: float = Field(default=120.0, gt=0)

    def api_root(self) -> str:
        """The base URL of API calls, ending in ``/3.0``."""
        if self.base_url:
            root = self.base_url.rstrip("/")
            return root if root.endswith("/3.0") else root + "/3.0"
        key = self.api_key.get_secret_value()
        _, sep, dc = key.rpartition("-")
        if not sep or not _DATA_CENTRE.match(dc):
            raise ConfigError(
                "mailchimp: api_key must end in its data centre (e.g. '...-us6'), or set base_url"
            )
        return f"https://{dc}.api.mailchimp.com/3.0"
