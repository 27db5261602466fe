"""API clients: creating them, and the development defaults written outside git."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from sqlalchemy.orm import Session

from alliance.db.models import ApiClient, ClientKind
from gateway.crypto import hash_client_secret


def create_client(
    session: Session, client_id: str, kind: ClientKind, brand_code: str | None = None
) -> str:
    """Create (or reset) a client and return its new secret; only the hash is stored."""
    secret = secrets.token_urlsafe(32)
    client = session.get(ApiClient, client_id)
    if client is None:
        client = ApiClient(client_id=client_id, kind=kind, brand_code=brand_code, secret_hash="")
        session.add(client)
    client.secret_hash = hash_client_secret(secret)
    client.kind, client.brand_code, client.active = kind, brand_code, True
    session.flush()
    return secret


def ensure_dev_clients(
    session: Session, brand_codes: list[str], path: Path
) -> dict[str, dict[str, str]]:
    """Development credentials: one client per brand, an operator and an auditor, written
    to `path` (mode 0600) on first run and reused after. Returns them by client id."""
    stored: dict[str, dict[str, str]] = json.loads(path.read_text()) if path.exists() else {}
    wanted: list[tuple[str, ClientKind, str | None]] = [
        (f"brand-{code}", ClientKind.BRAND, code) for code in brand_codes
    ]
    wanted += [("operator", ClientKind.OPERATOR, None), ("auditor", ClientKind.AUDITOR, None)]
    changed = False
    for client_id, kind, brand_code in wanted:
        if client_id in stored and session.get(ApiClient, client_id) is not None:
            continue
        secret = create_client(session, client_id, kind, brand_code)
        stored[client_id] = {"client_id": client_id, "client_secret": secret, "kind": kind.value}
        if brand_code:
            stored[client_id]["brand"] = brand_code
        changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(stored, handle, indent=2, sort_keys=True)
        os.replace(path.with_suffix(".tmp"), path)
    return stored
