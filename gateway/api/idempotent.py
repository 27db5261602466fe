"""The shape every POST shares: check the Idempotency-Key, run the service in one unit of
work with the key stored beside its effect, wake the pipeline, and answer (or replay)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import orjson
from anyio import to_thread
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alliance.db.models import Operation, OperationStatus
from alliance.db.session import unit_of_work
from gateway.api.presenters import operation_public
from gateway.auth import Principal
from gateway.context import GatewayContext
from gateway.errors import GatewayError
from gateway.problems import STATUS_BY_CODE, problem
from gateway.services import idempotency
from gateway.services.intake import NewOperation, OperationView, Recorded
from gateway.services.member_cache import MemberSnapshot

WAIT_SLICE_S = 1.0
"""A waiting request re-reads the database at least this often (another replica may settle)."""

T = TypeVar("T")
CreatesOperation = Callable[[Session], Operation]
Prepares = Callable[[], None]
Checks = Callable[[], Awaitable[None]]
CreatesResponse = Callable[[Session], tuple[int, dict[str, Any]]]


async def in_db_thread(context: GatewayContext, work: Callable[..., T], *args: Any) -> T:
    """Run database work in a worker thread, at most `db_threads_max` at a time: more
    threads only queue on the database's write lock while taking turns at the GIL, which
    stretches every transaction (and the submitter's, queued behind them)."""
    return await to_thread.run_sync(work, *args, limiter=context.db_limiter)


async def cached_member(context: GatewayContext, public_id: str, brand_code: str) -> MemberSnapshot:
    """The member `brand_code` knows as `public_id`, from the cache or else the database."""
    member = context.member_cache.get(public_id, brand_code)
    if member is not None:
        return member

    def load() -> MemberSnapshot:
        with context.sessions() as session:
            return context.member_cache.load(session, public_id, brand_code)

    return await in_db_thread(context, load)


def _key_and_hash(request: Request, key: str | None, body: Any) -> tuple[str, str]:
    checked = idempotency.check_key(key)
    return checked, idempotency.request_hash(request.method, _url_path(request), body)


def _url_path(request: Request) -> str:
    """`request.url.path` without building the URL (a tenth of a millisecond per request)
    when the path has nothing that building it would change: the hash of a key's request
    must stay the same across versions."""
    path = request.scope["path"]
    if path.isascii() and path.isprintable() and not any(c in path for c in "?#\\"):
        return str(path)
    return request.url.path


async def operation_post(
    context: GatewayContext,
    request: Request,
    principal: Principal,
    key: str | None,
    body: Any,
    create: CreatesOperation,
    *,
    wait_s: float = 0.0,
    prepare: Prepares | None = None,
    check: Checks | None = None,
) -> Response:
    """An idempotent POST that records an operation; waits up to `wait_s` for it to settle.

    Only for a new key, before the write transaction: `prepare` runs the slow synchronous
    checks (database reads, chain reads through web3) in a worker thread, then `check` the
    asynchronous ones (a conversion's simulation) on the event loop. A replay is answered
    from what the first request recorded. Database work runs in worker threads, a few
    short hops per request; waiting for the chain holds no thread.
    """
    checked, hashed = _key_and_hash(request, key, body)
    replayed = await in_db_thread(
        context, _replayed_or_prepared, context, principal, checked, hashed, prepare
    )
    if replayed is None and check is not None:
        await check()
    recorded = replayed
    if recorded is None:
        recorded = await in_db_thread(
            context, _first_or_replayed, context, principal, checked, hashed, create
        )
    if context.pipeline is not None:
        context.pipeline.wake(recorded.signer)
    if wait_s > 0 and not recorded.final:
        await _wait(context, recorded.id, wait_s)
    return await in_db_thread(
        context, lambda: render_operation(context, recorded.id, synchronous=wait_s > 0)
    )


async def batched_operation_post(
    context: GatewayContext,
    request: Request,
    principal: Principal,
    key: str | None,
    body: Any,
    prepare: Callable[[], Awaitable[Prepared]],
    *,
    wait_s: float,
) -> Response:
    """The hot path of synchronous conversions: `operation_post`'s guarantees, at a few
    milliseconds of CPU a request. `prepare` (on the event loop) works out the operation
    and asks the chain whether it would pass; the write joins whatever else is being
    recorded at that moment (one transaction), and the answer is read with whatever else a
    settled batch woke (one query).

    The key is looked at only when `prepare` refuses: a refused request may repeat one that
    went through (its quote has expired since, its points are spent), and the first answer
    stands; a new request's key is checked in the transaction that records it.
    """
    checked, hashed = _key_and_hash(request, key, body)
    try:
        prepared = await prepare()
    except GatewayError:
        replayed = await in_db_thread(
            context, _replayed_or_prepared, context, principal, checked, hashed, None
        )
        if replayed is None:
            raise
        recorded = replayed
    else:
        new = NewOperation(
            principal.client_id,
            checked,
            hashed,
            prepared.kind,
            prepared.brand_code,
            prepared.member_id,
            prepared.params,
        )
        recorded = await context.batchers.record(new)
    if context.pipeline is not None:
        context.pipeline.wake(recorded.signer)
    if wait_s > 0 and not recorded.final:
        await _wait(context, recorded.id, wait_s)
    return operation_response(await context.batchers.view(recorded.id), synchronous=wait_s > 0)


def _replayed_or_prepared(
    context: GatewayContext,
    principal: Principal,
    key: str,
    hashed: str,
    prepare: Prepares | None,
) -> Recorded | None:
    """The operation an earlier use of `key` created (and its signer); else None, after
    running `prepare` for the new request."""
    with context.sessions() as session:
        earlier = idempotency.find(session, principal.client_id, key, hashed)
        if earlier is not None and earlier.operation_id is not None:
            return Recorded.of(session.get_one(Operation, earlier.operation_id))
    if prepare is not None:
        prepare()
    return None


def _first_or_replayed(
    context: GatewayContext, principal: Principal, key: str, hashed: str, create: CreatesOperation
) -> Recorded:
    """Record the operation with its key in one transaction; if another request with the
    same key got there first, its operation. Returns the operation's id and signer."""
    try:
        with unit_of_work(context.sessions) as session:
            earlier = idempotency.find(session, principal.client_id, key, hashed)
            if earlier is not None and earlier.operation_id is not None:
                return Recorded.of(session.get_one(Operation, earlier.operation_id))
            operation = create(session)
            idempotency.remember(
                session, principal.client_id, key, hashed, operation_id=operation.id
            )
            return Recorded.of(operation)
    except IntegrityError:
        # A concurrent request with the same key won the insert: replay what it created.
        with context.sessions() as session:
            earlier = idempotency.find(session, principal.client_id, key, hashed)
            assert earlier is not None and earlier.operation_id is not None
            return Recorded.of(session.get_one(Operation, earlier.operation_id))


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


async def _wait(context: GatewayContext, operation_id: int, wait_s: float) -> None:
    """Until the operation is final or `wait_s` has passed. The submitter's wake-up ends
    the wait at once; without one (another replica settled it), the database is re-read
    every WAIT_SLICE_S or so (checked at the waiters' shared ticks, so that no request
    arms a timer of its own until its last slice)."""
    woken = context.waiters.future_for(operation_id)
    deadline = time.monotonic() + wait_s
    read_at = time.monotonic() + WAIT_SLICE_S
    try:
        while not woken.done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if remaining <= WAIT_SLICE_S:
                # The last slice ends on time: its own timer.
                await asyncio.wait((woken,), timeout=remaining)
                continue
            await context.waiters.woken_or_tick(woken)
            if not woken.done() and time.monotonic() >= read_at:
                if await in_db_thread(context, _is_final, context, operation_id):
                    return
                read_at = time.monotonic() + WAIT_SLICE_S
    finally:
        context.waiters.forget(operation_id, woken)


def _is_final(context: GatewayContext, operation_id: int) -> bool:
    with context.sessions() as session:
        return OperationStatus(session.get_one(Operation, operation_id).status).is_final


def render_operation(context: GatewayContext, operation_id: int, *, synchronous: bool) -> Response:
    """The answer for an operation POST (see `operation_response`), read now."""
    with context.sessions() as session:
        operation = session.get_one(Operation, operation_id)
        view = OperationView(
            operation.status,
            operation.error_code,
            operation.error_detail,
            operation_public(session, operation).model_dump(mode="json"),
        )
    return operation_response(view, synchronous=synchronous)


def operation_response(view: OperationView, *, synchronous: bool) -> Response:
    """Asynchronous endpoints always answer 202 with the operation (whatever its status by
    then). Synchronous ones answer 201 when confirmed, 202 while pending, and the problem
    (with the operation) when it failed."""
    location = {"Location": f"/v1/operations/{view.public['id']}"}
    if not synchronous:
        return FastJSONResponse(view.public, status_code=202, headers=location)
    if view.status == OperationStatus.FAILED and view.error_code:
        return problem(
            view.error_code,
            view.error_detail or view.error_code,
            status=STATUS_BY_CODE.get(view.error_code, 422),
            operation=view.public,
        )
    status = 201 if view.status == OperationStatus.CONFIRMED else 202
    return FastJSONResponse(view.public, status_code=status, headers=location)


class FastJSONResponse(JSONResponse):
    """JSON rendered by orjson (same bytes as Starlette's compact, non-ASCII-escaping JSON,
    several times faster)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class Prepared(Protocol):
    """What `batched_operation_post` records: an operation's kind, owner and parameters."""

    @property
    def kind(self) -> str: ...
    @property
    def brand_code(self) -> str: ...
    @property
    def member_id(self) -> int | None: ...
    @property
    def params(self) -> dict[str, Any]: ...
