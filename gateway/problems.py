"""The one table from error codes to HTTP problem responses (RFC 9457), and the handlers.

Every refusal leaves as `application/problem+json` with a stable `code`; anything
unexpected becomes a generic 500 problem without internals (and is logged), never a
stack trace on the wire.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.errors import GatewayError

PROBLEM_TYPE_BASE = "https://alliance.example/problems/"
RETRY_AFTER_S = {
    "chain_unavailable": 5,
    "database_unavailable": 5,
    "idempotency_in_progress": 1,
    "rate_limited": 1,
}

STATUS_BY_CODE: dict[str, int] = {
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "unknown_brand": 404,
    "period_not_settled": 404,
    "method_not_allowed": 405,
    "idempotency_key_missing": 400,
    "idempotency_conflict": 409,
    "idempotency_in_progress": 409,
    "member_exists": 409,
    "address_taken": 409,
    "custody_change_pending": 409,
    "custody_unchanged": 409,
    "quote_used": 409,
    "operation_not_cancellable": 409,
    "cancelled": 409,
    "webhook_limit_reached": 409,
    "freeze_exists": 409,
    "freeze_self_approval": 409,
    "period_closed": 409,
    "period_not_anchored": 409,
    "period_already_acknowledged": 409,
    "validation_failed": 422,
    "link_code_invalid": 422,
    "insufficient_points": 422,
    "pair_disabled": 422,
    "below_minimum": 422,
    "above_maximum": 422,
    "daily_cap_exceeded": 422,
    "slippage_exceeded": 422,
    "quote_expired": 422,
    "quote_required": 422,
    "member_frozen": 422,
    "gifting_disabled": 422,
    "brand_suspended": 422,
    "same_brand": 422,
    "invalid_amount": 422,
    "signature_required": 422,
    "invalid_signature": 422,
    "signature_expired": 422,
    "invalid_nonce": 422,
    "wallet_required": 422,
    "chain_rejected": 422,
    "webhook_url_refused": 422,
    "freeze_brand_not_in_alert": 422,
    "invalid_period": 422,
    "rate_limited": 429,
    "chain_unavailable": 503,
    "database_unavailable": 503,
}

logger = logging.getLogger("gateway.problems")


def problem(code: str, detail: str, status: int | None = None, **extra: Any) -> JSONResponse:
    """A problem+json response for `code`."""
    status = status or STATUS_BY_CODE.get(code, 400)
    retry_after_s = extra.pop("retry_after_s", RETRY_AFTER_S.get(code))
    body = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    headers = {}
    if retry_after_s is not None:
        headers["Retry-After"] = str(retry_after_s)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the app can meet through `problem`."""

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, error: GatewayError) -> JSONResponse:
        return problem(error.code, error.describe(), **error.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": list(item.get("loc", ())),
                "msg": str(item.get("msg", "")),
                "type": item.get("type"),
            }
            for item in error.errors()
        ]
        return problem("validation_failed", "the request does not match the schema", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
            error.status_code, HTTPStatus(error.status_code).phrase.lower().replace(" ", "_")
        )
        return problem(code, str(error.detail), status=error.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem("internal_error", "an unexpected error occurred", status=500)
