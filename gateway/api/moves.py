"""Moves: a member's points from the calling brand's programme into another brand's, in
one call (deposit → conversion → withdrawal), completed or compensated."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.api.deps import Caller, Context, IdempotencyKeyHeader
from gateway.api.idempotent import operation_post
from gateway.schemas import MoveCreate, OperationPublic
from gateway.services.moves import create_move

router = APIRouter(prefix="/v1", tags=["moves"])


@router.post("/moves", status_code=202, response_model=OperationPublic)
async def move(
    body: MoveCreate,
    request: Request,
    context: Context,
    caller: Caller,
    key: IdempotencyKeyHeader = None,
) -> Response:
    """Start a move from the calling brand to `to_brand`; 202 with the move operation,
    whose status (and `children`) `GET /v1/operations/{id}` shows until it is final."""
    brand = caller.require_brand()
    return await operation_post(
        context,
        request,
        caller,
        key,
        body.model_dump(),
        lambda session: create_move(session, context, brand, body),
    )
