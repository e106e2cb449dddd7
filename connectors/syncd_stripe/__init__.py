"""syncd connector for Stripe: customers, with subscriptions and invoices as read-only context."""

from ._billing import BILLING_FIELDS, monthly_amount, summarise
from ._client import IdempotencyError, form
from ._config import StripeConfig
from ._connector import StripeConnector, idempotency_key
from ._reading import EVENTS_RETENTION_SECONDS
from ._webhooks import sign, verify

__all__ = [
    "BILLING_FIELDS",
    "EVENTS_RETENTION_SECONDS",
    "IdempotencyError",
    "StripeConfig",
    "StripeConnector",
    "form",
    "idempotency_key",
    "monthly_amount",
    "sign",
    "summarise",
    "verify",
]
