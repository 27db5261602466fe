"""Idempotency-Key handling: the same key and body replay the first result; another body
is a conflict. The key is stored in the same transaction as what the request created."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.orm import Session

from alliance.db.models import IdempotencyKey
from gateway import errors

KEY_LENGTH_MAX = 128


def request_hash(method: str, path: str, body: Any) -> str:
    """A stable hash of what was asked (canonical JSON of the parsed body)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def check_key(key: str | None) -> str:
    """The key, or `idempotency_key_missing` / `validation_failed` for a bad one."""
    if not key:
        raise errors.IdempotencyKeyMissing("POST requests need an Idempotency-Key header")
    if len(key) > KEY_LENGTH_MAX or not key.isascii() or not key.isprintable():
        raise errors.IdempotencyKeyMissing(
            "Idempotency-Key must be 1-128 printable ASCII characters"
        )
    return key


def find(session: Session, client_id: str, key: str, hashed: str) -> IdempotencyKey | None:
    """The earlier use of `key` by `client_id`, if any; a different body is a conflict."""
    record = session.get(IdempotencyKey, (client_id, key))
    if record is not None and record.request_hash != hashed:
        raise errors.IdempotencyConflict("this Idempotency-Key was used with a different request")
    return record


def remember(
    session: Session,
    client_id: str,
    key: str,
    hashed: str,
    *,
    operation_id: int | None = None,
    response_status: int | None = None,
    response_body: dict[str, Any] | None = None,
) -> None:
    """Store the key with what the request produced (same transaction as the effect)."""
    session.add(
        IdempotencyKey(
            client_id=client_id,
            key=key,
            request_hash=hashed,
            operation_id=operation_id,
            response_status=response_status,
            response_body=response_body,
        )
    )
    session.flush()
