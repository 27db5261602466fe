"""FastAPI dependencies: the gateway context and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from gateway import errors
from gateway.auth import Principal
from gateway.context import GatewayContext


async def get_context(request: Request) -> GatewayContext:
    """The gateway context. Dependencies are async when they only compute (no I/O), so
    FastAPI runs them on the event loop instead of hopping to a worker thread."""
    context: GatewayContext = request.app.state.context
    return context


Context = Annotated[GatewayContext, Depends(get_context)]


async def get_principal(
    context: Context, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """The caller of a valid bearer token (rate-limited per client)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise errors.Unauthorized("a bearer token is required")
    principal = context.tokens.verify(token.strip())
    context.limiter.check(principal.client_id)
    return principal


Caller = Annotated[Principal, Depends(get_principal)]
IdempotencyKeyHeader = Annotated[str | None, Header(alias="Idempotency-Key")]
