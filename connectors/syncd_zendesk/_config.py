"""Settings of the Zendesk connector: where the account is, how to authenticate, how hard to push."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from syncd.connector import ConnectorConfig

ObjectName = Literal["users", "organizations"]
Role = Literal["end-user", "agent", "admin"]

_SUBDOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _all_objects() -> list[ObjectName]:
    return ["users", "organizations"]


def _end_users() -> list[Role]:
    return ["end-user"]


class ZendeskConfig(ConnectorConfig):
    """One Zendesk Support account.

    Authenticate either with an agent's ``email`` and an API ``api_token`` (sent as Basic
    ``{email}/token:{api_token}``) or with an OAuth access token (``oauth_token``, sent as Bearer).
    """

    #: ``acme`` for ``https://acme.zendesk.com``.
    subdomain: str | None = None
    #: API root override (a fake or a proxy); ``/api/v2`` is appended when missing.
    base_url: str | None = None
    email: str | None = None
    api_token: SecretStr | None = None
    oauth_token: SecretStr | None = None
    #: Object types served.
    objects: list[ObjectName] = Field(default_factory=_all_objects, min_length=1)
    #: Roles of the users that are synced (listing and incremental export); agents are staff.
    roles: list[Role] = Field(default_factory=_end_users, min_length=1)
    #: Records per listing page (``page[size]``, at most 100).
    page_size: int = Field(default=100, ge=1, le=100)
    #: Records per incremental export page (``per_page``, at most 1000).
    export_page_size: int = Field(default=1000, ge=1, le=1000)
    #: Incremental reads after a full listing start this long before it; Zendesk leaves the last
    #: minute out of every export, so this must exceed 60 seconds.
    overlap_seconds: float = Field(default=120.0, gt=60)
    #: Cap on requests per minute. By default the plan's limit, read from Zendesk's ``X-Rate-Limit``
    #: header (200, the smallest current plan, until the first answer says).
    requests_per_minute: int | None = Field(default=None, ge=2)
    #: Requests per minute to the incremental export endpoints (10; 30 with High Volume).
    export_requests_per_minute: int = Field(default=10, ge=2)
    #: Resolve ``organization.name`` on users (cached per organization id).
    resolve_organization_names: bool = True
    organization_cache_seconds: float = Field(default=300.0, ge=0)
    #: Signing secret of the Zendesk webhook; None refuses webhooks.
    webhook_secret: SecretStr | None = None
    #: Secrets still accepted while a new ``webhook_secret`` is being rolled out.
    previous_webhook_secrets: list[SecretStr] = Field(default_factory=list)
    webhook_tolerance_seconds: float = Field(default=300.0, gt=0)
    #: Pause between polls of a bulk job's status.
    job_poll_seconds: float = Field(default=1.0, gt=0)
    #: A bulk job (or waiting for a free job slot) longer than this fails the batch as transient.
    job_timeout_seconds: float = Field(default=600.0, gt=0)
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("subdomain")
    @classmethod
    def _subdomain(cls, value: str | None) -> str | None:
        if value is not None and not _SUBDOMAIN.match(value):
            raise ValueError(f"subdomain is the first label of <subdomain>.zendesk.com, not {value!r}")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, not {value!r}")
        return value

    @model_validator(mode="after")
    def _auth_and_address(self) -> ZendeskConfig:
        if self.subdomain is None and self.base_url is None:
            raise ValueError("set subdomain (or base_url)")
        token_auth = self.email is not None or self.api_token is not None
        if token_auth and self.oauth_token is not None:
            raise ValueError("set either email + api_token or oauth_token, not both")
        if token_auth and (not self.email or self.api_token is None):
            raise ValueError("API token authentication needs both email and api_token")
        if not token_auth and self.oauth_token is None:
            raise ValueError("set email + api_token (API token) or oauth_token (OAuth)")
        return self

    def api_root(self) -> str:
        """The base URL of API calls, ending in ``/api/v2``."""
        if self.base_url:
            root = self.base_url.rstrip("/")
            return root if root.endswith("/api/v2") else root + "/api/v2"
        return f"https://{self.subdomain}.zendesk.com/api/v2"

    def webhook_secrets(self) -> list[str]:
        found = [self.webhook_secret, *self.previous_webhook_secrets]
        return [s.get_secret_value() for s in found if s is not None and s.get_secret_value()]
