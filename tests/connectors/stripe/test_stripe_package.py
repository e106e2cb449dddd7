"""The package's public surface, its registration and its settings."""

from __future__ import annotations

import pydantic
import pytest

import syncd_stripe
from syncd.connector import load
from syncd_stripe import StripeConfig, StripeConnector


def test_the_exported_names_are_exactly_the_sorted_public_api() -> None:
    assert syncd_stripe.__all__ == sorted(syncd_stripe.__all__)
    assert all(hasattr(syncd_stripe, name) for name in syncd_stripe.__all__)


def test_the_connector_is_registered_under_the_stripe_entry_point() -> None:
    assert load("stripe") is StripeConnector


@pytest.mark.parametrize("key", ["pk_test_publishable", "whsec_abc", "", "sk"])
def test_only_secret_or_restricted_keys_are_accepted(key: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="secret_key"):
        StripeConfig.model_validate({"secret_key": key})


def test_a_base_url_ending_in_v1_is_not_doubled() -> None:
    config = StripeConfig.model_validate({"secret_key": "sk_test_x", "base_url": "http://127.0.0.1:8420/v1/"})
    assert config.base_url == "http://127.0.0.1:8420"


def test_page_size_is_capped_at_stripes_100() -> None:
    with pytest.raises(pydantic.ValidationError):
        StripeConfig.model_validate({"secret_key": "sk_test_x", "page_size": 101})


def test_the_secret_key_never_appears_in_the_settings_repr() -> None:
    config = StripeConfig.model_validate({"secret_key": "sk_live_very_secret"})
    assert "sk_live_very_secret" not in repr(config)


def test_the_object_type_lists_every_mapping_path_including_billing_leaves() -> None:
    (customers,) = StripeConnector.objects
    assert customers.natural_keys == ("email",)
    assert {"email", "metadata", "address", "billing.mrr", "billing.plan", "billing.lifetime_paid"} <= set(
        customers.fields
    )
    assert "billing" not in customers.fields
