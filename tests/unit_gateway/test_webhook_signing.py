"""Webhook signatures and the retry schedule are what receivers and operators rely on.

Pure: computes signatures and delays in memory (no database, no HTTP). Proves that the
`Alliance-Signature` header is HMAC-SHA256 over `"<t>.<body>"` as docs/api.md says, that
verification refuses tampering, wrong secrets and stale timestamps, and that the retry
delays double from the initial delay with bounded jitter and never pass the cap.
"""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest

from gateway.webhooks import backoff_s, encode_body, signature_header, verify_signature

SECRET = "whsec_test"
BODY = encode_body({"type": "operation.confirmed", "id": "e1", "data": {"amount": 5}})


def test_encode_body_is_compact_and_sorted() -> None:
    assert encode_body({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'


def test_signature_header_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signature_header(SECRET, 1_700_000_000, BODY) == f"t=1700000000,v1={expected}"


def test_verify_signature_accepts_a_fresh_genuine_signature() -> None:
    header = signature_header(SECRET, 1_700_000_000, BODY)
    assert verify_signature(SECRET, header, BODY, now=1_700_000_010)


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        ("whsec_other", BODY, 1_700_000_010),  # wrong secret
        (SECRET, BODY.replace(b"5", b"6"), 1_700_000_010),  # tampered body
        (SECRET, BODY, 1_700_000_000 + 301),  # older than the tolerance
        (SECRET, BODY, 1_700_000_000 - 301),  # from the future
    ],
)
def test_verify_signature_refuses_forgery_and_stale_timestamps(
    secret: str, body: bytes, now: int
) -> None:
    header = signature_header(SECRET, 1_700_000_000, BODY)
    assert not verify_signature(secret, header, body, now=now)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=x,v1=abc", "t=1700000000"])
def test_verify_signature_refuses_malformed_headers(header: str) -> None:
    assert not verify_signature(SECRET, header, BODY, now=1_700_000_000)


def test_verify_signature_accepts_any_matching_v1_during_secret_rotation() -> None:
    genuine = signature_header(SECRET, 1_700_000_000, BODY)
    header = genuine.replace("v1=", "v1=" + "0" * 64 + ",v1=")
    assert verify_signature(SECRET, header, BODY, now=1_700_000_000)


class MidRandom(random.Random):
    """random() always 0.5: no jitter, so the nominal schedule shows."""

    def random(self) -> float:
        return 0.5


def test_backoff_doubles_from_the_initial_delay_up_to_the_cap() -> None:
    delays = [backoff_s(attempt, 1.0, 600.0, MidRandom()) for attempt in range(1, 13)]
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]


@pytest.mark.parametrize("attempt", [1, 2, 5, 9, 10, 11, 50, 500])
def test_backoff_jitter_stays_within_twenty_percent_and_under_the_cap(attempt: int) -> None:
    rng = random.Random(attempt)
    nominal = min(600.0, 2.0 ** (attempt - 1))
    for _ in range(200):
        delay = backoff_s(attempt, 1.0, 600.0, rng)
        assert 0.8 * nominal <= delay <= min(600.0, 1.2 * nominal)


def test_backoff_refuses_attempt_zero() -> None:
    with pytest.raises(AssertionError):
        backoff_s(0, 1.0, 600.0, random.Random(0))
