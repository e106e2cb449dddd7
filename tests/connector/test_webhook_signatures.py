"""Webhook signature helpers: digests against a published vector, constant-time matching, freshness."""

from __future__ import annotations

import base64
import hmac

import pytest

from syncd.connector import WebhookVerificationError, webhooks
from syncd.connector.webhooks import check_timestamp, hmac_sha256_b64, hmac_sha256_hex, matches_any

# RFC 4231, test case 2.
RFC4231_KEY = "Jefe"
RFC4231_DATA = b"what do ya want for nothing?"
RFC4231_MAC = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_hex_digest_matches_the_rfc_4231_vector() -> None:
    assert hmac_sha256_hex(RFC4231_KEY, RFC4231_DATA) == RFC4231_MAC
    assert hmac_sha256_hex(RFC4231_KEY.encode(), RFC4231_DATA) == RFC4231_MAC


def test_base64_digest_encodes_the_same_mac() -> None:
    assert hmac_sha256_b64(RFC4231_KEY, RFC4231_DATA) == base64.b64encode(bytes.fromhex(RFC4231_MAC)).decode()


def test_a_signature_made_with_any_current_secret_matches() -> None:
    body = b'{"id": 1}'
    expected = [hmac_sha256_hex(s, body) for s in ("new-secret", "old-secret")]
    assert matches_any(expected, [hmac_sha256_hex("old-secret", body)])
    assert matches_any(expected, ["garbage", hmac_sha256_hex("new-secret", body)])
    assert not matches_any(expected, [hmac_sha256_hex("stolen-secret", body)])


def test_no_signature_or_no_secret_never_matches() -> None:
    assert not matches_any([], ["abc"])
    assert not matches_any(["abc"], [])
    assert not matches_any(["abc"], ["ABC"])


def test_non_ascii_signatures_are_rejected_without_crashing() -> None:
    assert not matches_any(["abc"], ["äbc"])


def test_matching_compares_every_pair_even_after_a_match(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(webhooks.hmac, "compare_digest", counting)
    assert matches_any(["s1", "s2"], ["s1", "x"])
    assert len(calls) == 4, "stopping at the first match would leak which secret matched through timing"


def test_a_fresh_timestamp_passes_in_either_direction_within_tolerance() -> None:
    check_timestamp(1_000_000.0, now=1_000_299.0)
    check_timestamp(1_000_299.0, now=1_000_000.0)
    check_timestamp(1_000_000.0, tolerance=10, now=1_000_010.0)


@pytest.mark.parametrize("ts", [999_600.0, 1_000_400.0, float("nan"), float("inf")])
def test_stale_future_or_invalid_timestamps_are_rejected(ts: float) -> None:
    with pytest.raises(WebhookVerificationError) as caught:
        check_timestamp(ts, tolerance=300, now=1_000_000.0)
    assert caught.value.status == 401
