"""Creating operations, reading them back, and waiting for them to settle."""

from __future__ import annotations

import threading
import time
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
) -> Operation:
    """Record an accepted operation; the submitter of its signing key will pick it up."""
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
        operation.request_id = request_id_base(session) + operation.id
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
    """Lets a request wait for its operation to settle (in-process wake-ups)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[int, threading.Event] = {}

    def event_for(self, operation_id: int) -> threading.Event:
        with self._lock:
            return self._events.setdefault(operation_id, threading.Event())

    def notify(self, operation_ids: list[int]) -> None:
        with self._lock:
            for operation_id in operation_ids:
                self._events.setdefault(operation_id, threading.Event()).set()

    def forget(self, operation_id: int) -> None:
        with self._lock:
            self._events.pop(operation_id, None)
