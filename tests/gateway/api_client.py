"""An HTTP client for the gateway as a brand's integration would use it (httpx, real HTTP):
tokens from the development client file, a fresh Idempotency-Key on every POST unless the
test names one, and small helpers for the set-up most tests share."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt

from gateway.auth import TOKEN_ALGORITHM, TOKEN_AUDIENCE
from gateway.crypto import GatewaySecrets

HTTP_TIMEOUT_S = 60.0
TOKEN_REUSE_S = 600.0
"""Tokens live 15 minutes; take a new one well before that."""

FINAL_STATUSES = ("confirmed", "failed")
PROBLEM_JSON = "application/problem+json"

BRAND_CLIENTS = {"bean": "brand-bean", "sky": "brand-sky", "cart": "brand-cart"}


class Api:
    """The gateway's HTTP API, called as one of the development clients."""

    def __init__(self, base_url: str, data_dir: Path, generation: Callable[[], int]) -> None:
        self.base_url = base_url
        self.data_dir = data_dir
        self._generation = generation
        self._seen_generation = -1
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}

    # --- transport

    @property
    def http(self) -> httpx.Client:
        """A pooled client, renewed whenever the gateway process was (re)started, so no
        request goes out on a connection to a process that is gone."""
        with self._lock:
            generation = self._generation()
            if self._http is None or generation != self._seen_generation:
                if self._http is not None:
                    self._http.close()
                self._http = httpx.Client(
                    base_url=self.base_url,
                    timeout=HTTP_TIMEOUT_S,
                    limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                )
                self._seen_generation = generation
            return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    # --- credentials

    def credentials(self, client_id: str) -> dict[str, str]:
        clients: dict[str, dict[str, str]] = json.loads(
            (self.data_dir / "gateway-clients.json").read_text()
        )
        return clients[client_id]

    def token_response(self, client_id: str, client_secret: str | None = None) -> httpx.Response:
        secret = client_secret or self.credentials(client_id)["client_secret"]
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        return self.http.post("/v1/oauth/token", data=form)

    def token(self, client_id: str) -> str:
        """A bearer token for `client_id` (cached while young)."""
        cached = self._tokens.get(client_id)
        if cached is not None and time.monotonic() - cached[1] < TOKEN_REUSE_S:
            return cached[0]
        response = self.token_response(client_id)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        self._tokens[client_id] = (token, time.monotonic())
        return token

    def token_key(self) -> bytes:
        """The gateway's token-signing key (derived from its master secret file)."""
        master = json.loads((self.data_dir / "gateway-secrets.json").read_text())["master_secret"]
        return GatewaySecrets.from_master(bytes.fromhex(master)).token_key

    def forged_token(self, client_id: str, *, expires_in_s: int, key: bytes | None = None) -> str:
        """A token with `client_id`'s real claims, expiring `expires_in_s` from now (negative:
        already expired), signed with the gateway's key unless another `key` is given."""
        record = self.credentials(client_id)
        now = int(time.time())
        claims = {
            "sub": client_id,
            "scope": record["kind"],
            "brand": record.get("brand"),
            "aud": TOKEN_AUDIENCE,
            "iat": now - 3600,
            "exp": now + expires_in_s,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, key or self.token_key(), algorithm=TOKEN_ALGORITHM)

    def auth(self, client: str | None) -> dict[str, str]:
        """Headers for `client`: a development client id, or None for no credentials."""
        return {"Authorization": f"Bearer {self.token(client)}"} if client else {}

    # --- requests

    def post(
        self,
        path: str,
        body: Any,
        client: str | None = "brand-bean",
        key: str | None = None,
        *,
        send_key: bool = True,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST JSON with a fresh Idempotency-Key (or `key`; none if not `send_key`)."""
        sent = self.auth(client) | (headers or {})
        if send_key:
            sent["Idempotency-Key"] = key or uuid.uuid4().hex
        return self.http.post(path, json=body, headers=sent)

    def get(
        self, path: str, client: str | None = "brand-bean", *, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return self.http.get(path, headers=self.auth(client) | (headers or {}))

    def routes(self) -> set[tuple[str, str]]:
        """(METHOD, path template) of every operation in the live OpenAPI document."""
        document = self.http.get("/openapi.json").json()
        return {
            (method.upper(), path)
            for path, operations in document["paths"].items()
            for method in operations
            if method in ("get", "post", "put", "patch", "delete")
        }

    # --- shared set-up

    def register_member(self, brand: str = "bean") -> dict[str, Any]:
        body = {"brand_member_id": f"member-{uuid.uuid4().hex[:12]}"}
        response = self.post("/v1/members", body, BRAND_CLIENTS[brand])
        assert response.status_code == 201, response.text
        member: dict[str, Any] = response.json()
        return member

    def deposit(self, member_id: str, amount: int, brand: str = "bean") -> dict[str, Any]:
        body = {
            "member_id": member_id,
            "amount": amount,
            "brand_transaction_id": f"tx-{uuid.uuid4().hex}",
        }
        response = self.post("/v1/deposits", body, BRAND_CLIENTS[brand])
        assert response.status_code == 202, response.text
        operation: dict[str, Any] = response.json()
        return operation

    def wait_final(
        self, operation_id: int, client: str = "operator", timeout_s: float = 60.0
    ) -> dict[str, Any]:
        """The operation once confirmed or failed (fails the test after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while True:
            response = self.get(f"/v1/operations/{operation_id}", client)
            assert response.status_code == 200, response.text
            operation: dict[str, Any] = response.json()
            if operation["status"] in FINAL_STATUSES:
                return operation
            assert time.monotonic() < deadline, f"operation never became final: {operation}"
            time.sleep(0.1)

    def funded_member(self, brand: str = "bean", amount: int = 10_000) -> dict[str, Any]:
        """A new member of `brand` holding `amount` of its points (deposit confirmed)."""
        member = self.register_member(brand)
        operation = self.wait_final(self.deposit(member["id"], amount, brand)["id"])
        assert operation["status"] == "confirmed", operation
        return member


def conversion_body(
    member_id: str, from_brand: str, to_brand: str, amount_in: int, **extra: Any
) -> dict[str, Any]:
    return {
        "member_id": member_id,
        "from_brand": from_brand,
        "to_brand": to_brand,
        "amount_in": amount_in,
        **extra,
    }


def deposit_body(member_id: str, amount: int) -> dict[str, Any]:
    return {"member_id": member_id, "amount": amount, "brand_transaction_id": uuid.uuid4().hex}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and code; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status, body
    return body
