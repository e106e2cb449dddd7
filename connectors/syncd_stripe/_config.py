"""Settings of the Stripe connector."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from syncd.connector import ConnectorConfig


class StripeConfig(ConnectorConfig):
    """One Stripe account, reached with a secret (``sk_...``) or restricted (``rk_...``) key."""

    secret_key: SecretStr
    #: API root; a fake or localstripe in tests (``/v1/...`` paths are appended).
    base_url: str = "https://api.stripe.com"
    #: ``Stripe-Version`` header; None uses the account's default API version.
    api_version: str | None = None
    #: Signing secret (``whsec_...``) of the webhook endpoint. None: webhooks are refused.
    webhook_secret: SecretStr | None = None
    #: Secrets still accepted while an endpoint's secret is being rolled (Stripe signs with each).
    previous_webhook_secrets: list[SecretStr] = Field(default_factory=list)
    #: How far a webhook's signed timestamp may be from now, either way.
    webhook_tolerance_seconds: float = Field(default=300.0, gt=0)
    #: Customers per listing request (Stripe allows at most 100).
    page_size: int = Field(default=100, ge=1, le=100)
    #: Stripe's default per-endpoint limit is 25 requests per second (and 25/s for test-mode keys).
    requests_per_second: float = Field(default=25.0, gt=0)
    #: Simultaneous requests.
    max_connections: int = Field(default=10, ge=1)
    #: Incremental reads ask for events this many seconds before the cursor (re-reads are harmless).
    events_overlap_seconds: float = Field(default=60.0, ge=0)
    #: Compute the read-only ``billing.*`` fields from subscriptions and invoices (extra requests).
    billing_fields: bool = True
    #: What ``find`` returns when several customers share an email: all of them (syncd reports an
    #: identity conflict) or only the most recently created one.
    duplicate_email: Literal["all", "newest"] = "all"
    #: ``delete`` erases customers for good and cancels their subscriptions at once; off by default.
    allow_delete: bool = False
    #: Metadata key stamped on customers syncd creates, holding the create's idempotency key
    #: (``<sync>:<entity>:<app>:create:<nonce>``). ``""``: no stamp.
    key_metadata: str | None = "syncd_id"
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, key: SecretStr) -> SecretStr:
        if not key.get_secret_value().startswith(("sk_", "rk_")):
            raise ValueError("secret_key must be a secret (sk_...) or restricted (rk_...) API key")
        return key

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, not {url!r}")
        root = url.rstrip("/")
        return root[: -len("/v1")] if root.endswith("/v1") else root

    @field_validator("key_metadata")
    @classmethod
    def _key_metadata(cls, name: str | None) -> str | None:
        if not name:
            return None  # "" switches the stamp off (TOML has no null)
        if len(name) > 40:
            raise ValueError("key_metadata must be a metadata key of at most 40 characters")
        return name

    def webhook_secrets(self) -> list[str]:
        """Every signing secret currently accepted, the current one first."""
        found = [self.webhook_secret, *self.previous_webhook_secrets]
        return [s.get_secret_value() for s in found if s is not None and s.get_secret_value()]
