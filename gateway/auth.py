"""OAuth2 client credentials: issue short-lived HS256 tokens, verify them, rate-limit clients."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

import jwt
from sqlalchemy.orm import Session

from alliance.db.models import ApiClient, ClientKind
from gateway import errors
from gateway.crypto import verify_client_secret

TOKEN_ALGORITHM = "HS256"
TOKEN_AUDIENCE = "alliance-gateway"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a brand (with its code), an operator or an auditor."""

    client_id: str
    kind: ClientKind
    brand_code: str | None

    @property
    def scope(self) -> str:
        return self.kind.value

    def require_brand(self) -> str:
        """The caller's brand code; other kinds are forbidden here."""
        if self.kind != ClientKind.BRAND or self.brand_code is None:
            raise errors.Forbidden("this endpoint is for brand clients")
        return self.brand_code

    def require(self, *kinds: ClientKind) -> None:
        if self.kind not in kinds:
            raise errors.Forbidden(
                f"this endpoint needs scope {' or '.join(k.value for k in kinds)}"
            )

    def visible_brand(self) -> str | None:
        """The brand whose data this caller is limited to (None: all, read-only for auditors)."""
        return self.brand_code if self.kind == ClientKind.BRAND else None


def authenticate_client(session: Session, client_id: str, client_secret: str) -> ApiClient:
    """The client with these credentials, or `unauthorized` (same answer for every failure)."""
    client = session.get(ApiClient, client_id)
    if (
        client is None
        or not client.active
        or not verify_client_secret(client_secret, client.secret_hash)
    ):
        raise errors.Unauthorized("invalid client credentials")
    return client


def issue_token(key: bytes, client: ApiClient, ttl_s: int) -> str:
    """A signed access token for `client`."""
    now = int(time.time())
    claims = {
        "sub": client.client_id,
        "scope": client.kind,
        "brand": client.brand_code,
        "aud": TOKEN_AUDIENCE,
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm=TOKEN_ALGORITHM)


def verify_token(key: bytes, token: str) -> Principal:
    """The principal of a valid token, or `unauthorized`."""
    return _verified(key, token)[0]


def _verified(key: bytes, token: str) -> tuple[Principal, int]:
    """The principal of a valid token and its expiry (Unix seconds), or `unauthorized`."""
    try:
        claims = jwt.decode(token, key, algorithms=[TOKEN_ALGORITHM], audience=TOKEN_AUDIENCE)
        principal = Principal(claims["sub"], ClientKind(claims["scope"]), claims.get("brand"))
        return principal, int(claims["exp"])
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        raise errors.Unauthorized("invalid or expired access token") from None


TOKEN_CACHE_SIZE_MAX = 4096
"""Most verified tokens remembered (clients reuse a token for its lifetime, so a handful
are live at a time; the oldest is forgotten first)."""


class TokenVerifier:
    """Verifies bearer tokens, remembering each verified token until it expires.

    Verifying an HS256 token costs ~0.3 ms of CPU (PyJWT parses the key and the JSON of
    every request's token), a tenth of a conversion's CPU under load; a token's claims
    cannot change while it is valid (it is signed, and verification looks at nothing
    else), so the answer for the same string is the same until its `exp`.
    """

    def __init__(self, key: bytes, size_max: int = TOKEN_CACHE_SIZE_MAX) -> None:
        self._key = key
        self._size_max = size_max
        self._verified: dict[str, tuple[Principal, int]] = {}

    def verify(self, token: str) -> Principal:
        """The principal of a valid token, or `unauthorized` (an expired one included)."""
        known = self._verified.get(token)
        # PyJWT's own rule: a token is expired once `exp <= now`.
        if known is not None and time.time() < known[1]:
            return known[0]
        self._verified.pop(token, None)
        principal, expires_at = _verified(self._key, token)
        while len(self._verified) >= self._size_max:
            self._verified.pop(next(iter(self._verified)), None)
        self._verified[token] = (principal, expires_at)
        return principal


class RateLimiter:
    """A token bucket per client (per gateway replica)."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, client_id: str) -> None:
        """Take one token for `client_id`, or raise `rate_limited` with a Retry-After."""
        now = time.monotonic()
        with self._lock:
            tokens, updated = self._buckets.get(client_id, (self._burst, now))
            tokens = min(self._burst, tokens + (now - updated) * self._rate)
            if tokens < 1:
                retry_after_s = max(1, int((1 - tokens) / self._rate) + 1)
                self._buckets[client_id] = (tokens, now)
                raise errors.RateLimited(
                    "too many requests", extra={"retry_after_s": retry_after_s}
                )
            self._buckets[client_id] = (tokens - 1, now)
