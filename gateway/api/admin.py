"""Operator endpoints: stuck operations, cancel, re-submit (operator scope only)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alliance.db.models import (
    AdminAction,
    AdminActionKind,
    AdminActionStatus,
    ClientKind,
    Operation,
)
from alliance.db.session import unit_of_work
from gateway.api.deps import Caller, Context, IdempotencyKeyHeader
from gateway.api.presenters import admin_action_public, operation_public
from gateway.auth import Principal
from gateway.context import GatewayContext
from gateway.schemas import AdminActionCreate, AdminActionPublic, OperationPage
from gateway.services import admin, idempotency

router = APIRouter(prefix="/v1/admin", tags=["admin"])

STUCK_LIMIT_DEFAULT = 100
STUCK_AGE_MAX_S = 10 * 366 * 86_400
"""Largest `older_than_s` (ten years): a larger age would overflow the cutoff datetime."""
POLL_S = 0.1
"""How often a waiting cancel or re-submit re-reads its action."""

ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": AdminActionPublic, "description": "Waiting for the operation's submitter."}
}


@router.get("/operations/stuck", response_model=OperationPage)
def list_stuck(
    context: Context,
    caller: Caller,
    older_than_s: Annotated[float | None, Query(gt=0, le=STUCK_AGE_MAX_S)] = None,
    limit: Annotated[int, Query(ge=1)] = STUCK_LIMIT_DEFAULT,
) -> OperationPage:
    """Operations not final after `older_than_s` (default: the `stuck_after_s` setting)."""
    caller.require(ClientKind.OPERATOR)
    threshold_s = older_than_s or context.settings.stuck_after_s
    with context.sessions() as session:
        rows = admin.stuck(session, threshold_s, min(limit, context.settings.page_size_max))
        return OperationPage(items=[operation_public(session, row) for row in rows])


@router.post(
    "/operations/{operation_id}/cancel",
    response_model=AdminActionPublic,
    responses=ACTION_RESPONSES,
)
def cancel(
    operation_id: int,
    body: AdminActionCreate,
    request: Request,
    context: Context,
    caller: Caller,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Cancel an operation that has not applied: at once when not yet signed, else by a
    same-nonce replacement its submitter sends. 200 when settled, 202 while it waits."""
    return _act(context, request, caller, key, operation_id, AdminActionKind.CANCEL, body)


@router.post(
    "/operations/{operation_id}/resubmit",
    response_model=AdminActionPublic,
    responses=ACTION_RESPONSES,
)
def resubmit(
    operation_id: int,
    body: AdminActionCreate,
    request: Request,
    context: Context,
    caller: Caller,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Re-broadcast an operation's signed transaction (same hash, same nonce)."""
    return _act(context, request, caller, key, operation_id, AdminActionKind.RESUBMIT, body)


@router.get("/actions/{action_id}", response_model=AdminActionPublic)
def read_action(action_id: int, context: Context, caller: Caller) -> AdminActionPublic:
    """An operator action and its operation."""
    caller.require(ClientKind.OPERATOR)
    with context.sessions() as session:
        return admin_action_public(session, admin.get_action(session, action_id))


def _act(
    context: GatewayContext,
    request: Request,
    caller: Principal,
    key: str | None,
    operation_id: int,
    kind: AdminActionKind,
    body: AdminActionCreate,
) -> JSONResponse:
    caller.require(ClientKind.OPERATOR)
    pipeline = context.pipeline
    on_final = pipeline.run_final_hooks if pipeline is not None else _no_hooks

    def create(session: Session) -> AdminAction:
        return admin.request_action(
            session, operation_id, kind, caller.client_id, body.reason, on_final
        )

    action_id = _recorded(context, request, caller, key, body.model_dump(), create)
    with context.sessions() as session:
        signer = session.get_one(Operation, operation_id).signer
    if pipeline is not None:
        pipeline.wake(signer, action=True)
    _wait(context, action_id)
    return _render(context, action_id)


def _no_hooks(session: Session, operation: Operation) -> None:
    """Without workers (tests, tools) there are no settlement hooks to run."""


def _recorded(
    context: GatewayContext,
    request: Request,
    caller: Principal,
    key: str | None,
    body: dict[str, Any],
    create: Callable[[Session], AdminAction],
) -> int:
    """The action this Idempotency-Key created: a new one, or the first one on a replay."""
    checked = idempotency.check_key(key)
    hashed = idempotency.request_hash(request.method, request.url.path, body)
    try:
        with unit_of_work(context.sessions) as session:
            earlier = idempotency.find(session, caller.client_id, checked, hashed)
            if earlier is not None and earlier.response_body is not None:
                return int(earlier.response_body["admin_action_id"])
            action = create(session)
            pointer = {"admin_action_id": action.id}
            idempotency.remember(session, caller.client_id, checked, hashed, response_body=pointer)
            return action.id
    except IntegrityError:
        # A concurrent request with the same key won the insert: answer with its action.
        with context.sessions() as session:
            earlier = idempotency.find(session, caller.client_id, checked, hashed)
            assert earlier is not None and earlier.response_body is not None
            return int(earlier.response_body["admin_action_id"])


def _wait(context: GatewayContext, action_id: int) -> None:
    """Until the action is final or `admin_wait_s` has passed."""
    deadline = time.monotonic() + context.settings.admin_wait_s
    while True:
        with context.sessions() as session:
            status = session.get_one(AdminAction, action_id).status
        if AdminActionStatus(status).is_final or time.monotonic() >= deadline:
            return
        time.sleep(POLL_S)


def _render(context: GatewayContext, action_id: int) -> JSONResponse:
    """200 with the action when it is final, 202 while its submitter has yet to act."""
    with context.sessions() as session:
        public = admin_action_public(session, session.get_one(AdminAction, action_id))
    status = 200 if AdminActionStatus(public.status).is_final else 202
    return JSONResponse(
        public.model_dump(mode="json"),
        status_code=status,
        headers={"Location": f"/v1/admin/actions/{action_id}"},
    )
