"""Creating operations, reading them back, and waiting for them to settle."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import OrderedDict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alliance.db.models import GatewayMeta, Member, Operation, OperationStatus
from gateway import errors
from gateway.pipeline.calls import signer_name

REQUEST_ID_BASE_KEY = "request_id_base"
REQUEST_ID_SHIFT = 24
"""Request ids are `base + operation id`, where base = (creation time in seconds) << 24, so a
new database facing an old chain never reuses a request id, and ids stay sequential (which
keeps the contracts' request-id bitmaps warm)."""


_BASES: dict[str, int] = {}


def request_id_base(session: Session) -> int:
    """This database's request-id base, created on first use (then cached: it never changes)."""
    url = str(session.get_bind().engine.url)
    if url in _BASES:
        return _BASES[url]
    meta = session.get(GatewayMeta, REQUEST_ID_BASE_KEY)
    if meta is None:
        meta = GatewayMeta(key=REQUEST_ID_BASE_KEY, value=str(int(time.time()) << REQUEST_ID_SHIFT))
        session.add(meta)
        session.flush()
        return int(meta.value)  # not cached until committed: this transaction may roll back
    _BASES[url] = int(meta.value)
    return _BASES[url]


def create_operation(
    session: Session,
    *,
    kind: str,
    brand_code: str,
    member: Member | None,
    params: dict[str, Any],
    parent: Operation | None = None,
    step: int = 0,
    on_chain: bool = True,
    request_id: int | None = None,
) -> Operation:
    """Record an accepted operation; the submitter of its signing key will pick it up. Its
    request id is `request_id` if given (reserved beforehand, e.g. by a signed quote),
    else the database's base plus the operation's id."""
    operation = Operation(
        kind=kind,
        status=OperationStatus.ACCEPTED,
        brand_code=brand_code,
        member_id=member.id if member is not None else None,
        signer=signer_name(kind, brand_code) if on_chain else None,
        parent_id=parent.id if parent is not None else None,
        step=step,
        params=params,
    )
    session.add(operation)
    session.flush()
    if on_chain:
        base = request_id_base(session)
        operation.request_id = base + operation.id if request_id is None else request_id
    return operation


OPERATION_ID_MAX = 2**31 - 1
"""Largest id the `operations.id` column holds on every backend (PostgreSQL INTEGER)."""


def get_operation(session: Session, operation_id: int, brand_code: str | None) -> Operation:
    """The operation, if `brand_code` may see it (None: operators and auditors see all)."""
    # An id no column can hold is simply unknown; passing it on makes the driver overflow.
    in_range = 1 <= operation_id <= OPERATION_ID_MAX
    operation = session.get(Operation, operation_id) if in_range else None
    if operation is None or (brand_code is not None and operation.brand_code != brand_code):
        raise errors.NotFound(f"no operation {operation_id}")
    return operation


def stuck_operations(session: Session, older_than_s: float, limit: int) -> list[Operation]:
    """Operations not final after `older_than_s` seconds, oldest first."""
    from datetime import timedelta

    from alliance.db.base import utc_now

    cutoff = utc_now() - timedelta(seconds=older_than_s)
    return list(
        session.scalars(
            select(Operation)
            .where(Operation.status.in_([OperationStatus.ACCEPTED, OperationStatus.SUBMITTED]))
            .where(Operation.created_at < cutoff)
            .order_by(Operation.id)
            .limit(limit)
        )
    )


class OperationWaiters:
    """Lets requests wait for their operations to settle (in-process wake-ups).

    A submitter thread calls `notify` after its commit; each waiting request holds an
    asyncio future on its event loop, resolved through that loop. An operation that settled
    just before its request began waiting is remembered among the last `RECENT_MAX`
    notified, so the wake-up is not missed (requests also re-read the database now and
    then: another replica's submitter may settle an operation without telling this one).
    """

    RECENT_MAX = 8192
    TICK_S = 0.25
    """Period of the shared tick that ends `woken_or_tick` without a wake-up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[int, list[asyncio.Future[None]]] = {}
        self._recent: OrderedDict[int, None] = OrderedDict()
        self._ticks: dict[asyncio.AbstractEventLoop, asyncio.Future[None]] = {}

    async def woken_or_tick(self, woken: asyncio.Future[None]) -> None:
        """Until `woken` is done or the next tick of the running loop (at most TICK_S).

        The requests waiting on one loop share one timer: a timer of its own per request
        (`asyncio.wait_for`) cost a few percent of the gateway's CPU under load, where
        nearly every wait ends by its wake-up long before any timeout."""
        if woken.done():
            return
        loop = asyncio.get_running_loop()
        tick = self._ticks.get(loop)
        if tick is None or tick.done():
            tick = self._ticks[loop] = loop.create_future()
            loop.call_later(self.TICK_S, _resolve, [tick])
        waiter = loop.create_future()

        def release(_: asyncio.Future[None]) -> None:
            if not waiter.done():
                waiter.set_result(None)

        woken.add_done_callback(release)
        tick.add_done_callback(release)
        try:
            await waiter
        finally:
            woken.remove_done_callback(release)
            tick.remove_done_callback(release)

    def future_for(self, operation_id: int) -> asyncio.Future[None]:
        """A future (on the running loop) resolved when `operation_id` is notified."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            if operation_id in self._recent:
                future.set_result(None)
            else:
                self._futures.setdefault(operation_id, []).append(future)
        return future

    def notify(self, operation_ids: list[int]) -> None:
        """Wake the requests waiting for `operation_ids` (from any thread)."""
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        with self._lock:
            for operation_id in operation_ids:
                self._recent[operation_id] = None
                for future in self._futures.pop(operation_id, ()):
                    by_loop.setdefault(future.get_loop(), []).append(future)
            while len(self._recent) > self.RECENT_MAX:
                self._recent.popitem(last=False)
        for loop, futures in by_loop.items():
            # A closed loop (shutdown) has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, futures)

    def forget(self, operation_id: int, future: asyncio.Future[None]) -> None:
        """Stop waiting (the request answered, with or without the wake-up)."""
        with self._lock:
            futures = self._futures.get(operation_id)
            if futures is not None and future in futures:
                futures.remove(future)
                if not futures:
                    del self._futures[operation_id]


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)
