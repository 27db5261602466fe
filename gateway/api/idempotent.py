"""The shape every POST shares: check the Idempotency-Key, run the service in one unit of
work with the key stored beside its effect, wake the pipeline, and answer (or replay)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alliance.db.models import Operation, OperationStatus
from alliance.db.session import unit_of_work
from gateway.api.presenters import operation_public
from gateway.auth import Principal
from gateway.context import GatewayContext
from gateway.problems import STATUS_BY_CODE, problem
from gateway.services import idempotency

WAIT_SLICE_S = 1.0
"""A waiting request re-reads the database at least this often (another replica may settle)."""

CreatesOperation = Callable[[Session], Operation]
Prepares = Callable[[], None]
CreatesResponse = Callable[[Session], tuple[int, dict[str, Any]]]


def _key_and_hash(request: Request, key: str | None, body: Any) -> tuple[str, str]:
    checked = idempotency.check_key(key)
    return checked, idempotency.request_hash(request.method, request.url.path, body)


def operation_post(
    context: GatewayContext,
    request: Request,
    principal: Principal,
    key: str | None,
    body: Any,
    create: CreatesOperation,
    *,
    wait_s: float = 0.0,
    prepare: Prepares | None = None,
) -> JSONResponse:
    """An idempotent POST that records an operation; waits up to `wait_s` for it to settle.

    `prepare` runs the slow checks (chain simulations) before the write transaction, and
    only for a new key: a replay is answered from what the first request recorded.
    """
    checked, hashed = _key_and_hash(request, key, body)
    with context.sessions() as session:
        earlier = idempotency.find(session, principal.client_id, checked, hashed)
        replayed = earlier.operation_id if earlier is not None else None
    if replayed is None and prepare is not None:
        prepare()
    operation_id = replayed or _first_or_replayed(context, principal, checked, hashed, create)
    with context.sessions() as session:
        operation = session.get_one(Operation, operation_id)
        signer = operation.signer
    if context.pipeline is not None:
        context.pipeline.wake(signer)
    if wait_s <= 0:
        return render_operation(context, operation_id, synchronous=False)
    _wait(context, operation_id, wait_s)
    return render_operation(context, operation_id, synchronous=True)


def _first_or_replayed(
    context: GatewayContext, principal: Principal, key: str, hashed: str, create: CreatesOperation
) -> int:
    try:
        with unit_of_work(context.sessions) as session:
            earlier = idempotency.find(session, principal.client_id, key, hashed)
            if earlier is not None and earlier.operation_id is not None:
                return earlier.operation_id
            operation = create(session)
            idempotency.remember(
                session, principal.client_id, key, hashed, operation_id=operation.id
            )
            return operation.id
    except IntegrityError:
        # A concurrent request with the same key won the insert: replay what it created.
        with context.sessions() as session:
            earlier = idempotency.find(session, principal.client_id, key, hashed)
            assert earlier is not None and earlier.operation_id is not None
            return earlier.operation_id


def response_post(
    context: GatewayContext,
    request: Request,
    principal: Principal,
    key: str | None,
    body: Any,
    create: CreatesResponse,
) -> JSONResponse:
    """An idempotent POST whose effect is a stored response (no chain operation)."""
    checked, hashed = _key_and_hash(request, key, body)
    try:
        with unit_of_work(context.sessions) as session:
            earlier = idempotency.find(session, principal.client_id, checked, hashed)
            if earlier is not None and earlier.response_body is not None:
                return JSONResponse(
                    earlier.response_body, status_code=earlier.response_status or 200
                )
            status, response = create(session)
            idempotency.remember(
                session,
                principal.client_id,
                checked,
                hashed,
                response_status=status,
                response_body=response,
            )
    except IntegrityError:
        with context.sessions() as session:
            earlier = idempotency.find(session, principal.client_id, checked, hashed)
            assert earlier is not None and earlier.response_body is not None
            return JSONResponse(earlier.response_body, status_code=earlier.response_status or 200)
    return JSONResponse(response, status_code=status)


def _wait(context: GatewayContext, operation_id: int, wait_s: float) -> None:
    event = context.waiters.event_for(operation_id)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            with context.sessions() as session:
                status = session.get_one(Operation, operation_id).status
            remaining = deadline - time.monotonic()
            if OperationStatus(status).is_final or remaining <= 0:
                return
            event.wait(min(WAIT_SLICE_S, remaining))
    finally:
        context.waiters.forget(operation_id)


def render_operation(
    context: GatewayContext, operation_id: int, *, synchronous: bool
) -> JSONResponse:
    """Asynchronous endpoints always answer 202 with the operation (whatever its status by
    then). Synchronous ones answer 201 when confirmed, 202 while pending, and the problem
    (with the operation) when it failed."""
    with context.sessions() as session:
        operation = session.get_one(Operation, operation_id)
        public = operation_public(session, operation).model_dump(mode="json")
    location = {"Location": f"/v1/operations/{operation_id}"}
    if not synchronous:
        return JSONResponse(public, status_code=202, headers=location)
    if operation.status == OperationStatus.FAILED and operation.error_code:
        return problem(
            operation.error_code,
            operation.error_detail or operation.error_code,
            status=STATUS_BY_CODE.get(operation.error_code, 422),
            operation=public,
        )
    status = 201 if operation.status == OperationStatus.CONFIRMED else 202
    return JSONResponse(
        public, status_code=status, headers={"Location": f"/v1/operations/{operation_id}"}
    )
