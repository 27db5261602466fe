"""Recording operations and reading them back, many requests at a time.

The hot path of synchronous conversions runs these through `gateway.batching.Batcher`: one
write transaction records every conversion queued at that moment with its Idempotency-Key
(set-based: one look-up of the keys, one multi-row insert of the operations, one of the
keys), and one read renders every operation whose requests a settled batch has woken.
Each function answers one outcome per item, in order: a refusal concerns its item only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple, cast

from sqlalchemy import BigInteger, Table, bindparam, insert, select, tuple_, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from alliance.db.base import utc_now
from alliance.db.models import (
    IdempotencyKey,
    Member,
    Operation,
    OperationKind,
    OperationStatus,
)
from alliance.db.session import unit_of_work
from gateway import errors
from gateway.api.presenters import operation_public, operation_public_of
from gateway.batching import Batcher
from gateway.pipeline.calls import signer_name
from gateway.services import idempotency
from gateway.services.operations import request_id_base


class Recorded(NamedTuple):
    """The operation a POST created or replays: its id, signing key, and whether it was
    already final when looked at."""

    id: int
    signer: str | None
    final: bool

    @classmethod
    def of(cls, operation: Operation) -> Recorded:
        return cls(operation.id, operation.signer, OperationStatus(operation.status).is_final)


@dataclass(frozen=True)
class NewOperation:
    """An operation to record, with the Idempotency-Key (and request hash) that asked."""

    client_id: str
    key: str
    request_hash: str
    kind: str
    brand_code: str
    member_id: int | None
    params: dict[str, Any]


def record_operations(
    sessions: sessionmaker[Session], items: list[NewOperation]
) -> list[Recorded | errors.GatewayError]:
    """Record `items` in one transaction: each a new operation, or the replay of what its
    key recorded earlier, or `idempotency_conflict`. Should another replica insert one of
    these keys meanwhile (PostgreSQL; SQLite has one writer), each item is recorded in its
    own transaction instead, as a lone request would be."""
    try:
        with unit_of_work(sessions) as session:
            return _record_all(session, items)
    except IntegrityError:
        return [_record_alone(sessions, item) for item in items]


def _record_all(
    session: Session, items: list[NewOperation]
) -> list[Recorded | errors.GatewayError]:
    pairs = {(item.client_id, item.key) for item in items}
    # On the session's connection: the same transaction, without the ORM's execution path
    # (these are Core statements; it cost as much as running them).
    earlier = {
        (record.client_id, record.key): record
        for record in session.connection().execute(_EARLIER_KEYS, {"pairs": list(pairs)})
    }
    outcomes: list[Recorded | errors.GatewayError | None] = [None] * len(items)
    replays_of_earlier: dict[int, int] = {}  # item index -> operation its key recorded
    replays_in_batch: dict[int, int] = {}  # item index -> index of its key's first item
    first_in_batch: dict[tuple[str, str], int] = {}
    fresh: list[int] = []
    for index, item in enumerate(items):
        pair = (item.client_id, item.key)
        if pair in earlier:
            record = earlier[pair]
            if _conflicts(record.request_hash, item, outcomes, index):
                continue
            assert record.operation_id is not None, "an operation POST's key names it"
            replays_of_earlier[index] = record.operation_id
        elif pair in first_in_batch:
            first = first_in_batch[pair]
            if not _conflicts(items[first].request_hash, item, outcomes, index):
                replays_in_batch[index] = first
        else:
            first_in_batch[pair] = index
            fresh.append(index)
    _insert(session, items, fresh, outcomes)
    for index, operation_id in replays_of_earlier.items():
        outcomes[index] = Recorded.of(session.get_one(Operation, operation_id))
    for index, first in replays_in_batch.items():
        outcomes[index] = outcomes[first]
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


def _conflicts(
    hashed: str,
    item: NewOperation,
    outcomes: list[Recorded | errors.GatewayError | None],
    index: int,
) -> bool:
    """Whether a repeated key came with another body (then its outcome is the conflict)."""
    if hashed == item.request_hash:
        return False
    outcomes[index] = errors.IdempotencyConflict(
        "this Idempotency-Key was used with a different request"
    )
    return True


_OPERATIONS = cast(Table, Operation.__table__)
# Built once: constructing statements costs more than running them at a few rows.
_INSERT_OPERATIONS = insert(_OPERATIONS).returning(_OPERATIONS.c.id, sort_by_parameter_order=True)
_SET_REQUEST_IDS = (
    update(_OPERATIONS)
    .where(_OPERATIONS.c.id.in_(bindparam("ids", expanding=True)))
    # Typed: PostgreSQL would otherwise infer `base` as the integer of `id` and overflow.
    .values(request_id=sql_cast(_OPERATIONS.c.id, BigInteger) + bindparam("base", type_=BigInteger))
)
_KEYS = cast(Table, IdempotencyKey.__table__)
_INSERT_KEYS = insert(_KEYS)
_EARLIER_KEYS = select(
    _KEYS.c.client_id, _KEYS.c.key, _KEYS.c.request_hash, _KEYS.c.operation_id
).where(tuple_(_KEYS.c.client_id, _KEYS.c.key).in_(bindparam("pairs", expanding=True)))


def _insert(
    session: Session,
    items: list[NewOperation],
    fresh: list[int],
    outcomes: list[Recorded | errors.GatewayError | None],
) -> None:
    """Insert the new operations in one statement (ids from the database), give them their
    request ids in one more, and store their keys beside them in a third. Core statements:
    the ORM's unit of work costs a few milliseconds here, per request."""
    if not fresh:
        return
    now = utc_now()
    rows = [
        {
            "kind": items[index].kind,
            "status": OperationStatus.ACCEPTED,
            "brand_code": items[index].brand_code,
            "member_id": items[index].member_id,
            "signer": signer_name(items[index].kind, items[index].brand_code),
            "step": 0,
            "params": items[index].params,
            "created_at": now,
            "updated_at": now,
        }
        for index in fresh
    ]
    connection = session.connection()
    inserted = connection.execute(_INSERT_OPERATIONS, rows)
    ids = [row.id for row in inserted]
    connection.execute(_SET_REQUEST_IDS, {"ids": ids, "base": request_id_base(session)})
    connection.execute(
        _INSERT_KEYS,
        [
            {
                "client_id": items[index].client_id,
                "key": items[index].key,
                "request_hash": items[index].request_hash,
                "operation_id": operation_id,
                "created_at": now,
            }
            for index, operation_id in zip(fresh, ids, strict=True)
        ],
    )
    for index, operation_id in zip(fresh, ids, strict=True):
        item = items[index]
        outcomes[index] = Recorded(operation_id, signer_name(item.kind, item.brand_code), False)


def _record_alone(
    sessions: sessionmaker[Session], item: NewOperation
) -> Recorded | errors.GatewayError:
    try:
        with unit_of_work(sessions) as session:
            earlier = idempotency.find(session, item.client_id, item.key, item.request_hash)
            if earlier is not None and earlier.operation_id is not None:
                return Recorded.of(session.get_one(Operation, earlier.operation_id))
            return _record_all(session, [item])[0]
    except errors.GatewayError as error:
        return error
    except IntegrityError:
        # The other replica's insert won: replay what it recorded.
        with sessions() as session:
            earlier = idempotency.find(session, item.client_id, item.key, item.request_hash)
            assert earlier is not None and earlier.operation_id is not None
            return Recorded.of(session.get_one(Operation, earlier.operation_id))


class OperationView(NamedTuple):
    """An operation as its requester sees it (`public`: the JSON of `OperationPublic`)."""

    status: str
    error_code: str | None
    error_detail: str | None
    public: dict[str, Any]


def operation_views(
    sessions: sessionmaker[Session], operation_ids: list[int]
) -> list[OperationView | errors.GatewayError]:
    """The public views of `operation_ids`, read in one query (a settled batch wakes many)."""
    wanted = set(operation_ids)
    with sessions() as session:
        rows = session.execute(
            select(Operation.__table__, Member.public_id.label("member_public_id"))
            .outerjoin(Member, Member.id == Operation.member_id)
            .where(Operation.id.in_(wanted))
        ).all()
        views: dict[int, OperationView | errors.GatewayError] = {
            operation_id: errors.NotFound(f"no operation {operation_id}") for operation_id in wanted
        }
        for row in rows:
            if row.kind == OperationKind.MOVE:  # a move lists its steps: the full presenter
                public = operation_public(session, session.get_one(Operation, row.id))
            else:
                public = operation_public_of(row, row.member_public_id, children=None)
            views[row.id] = OperationView(
                row.status, row.error_code, row.error_detail, public.model_dump(mode="json")
            )
    return [views[operation_id] for operation_id in operation_ids]


VIEW_BATCH_SIZE_MAX = 512
"""Most operations read back in one query."""


class RequestBatchers:
    """The batchers of the conversion hot path: records (one write transaction) and views
    (one read), each on its own thread, started and stopped with the app."""

    def __init__(self, sessions: sessionmaker[Session], record_batch_size_max: int) -> None:
        self.recorder: Batcher[NewOperation, Recorded] = Batcher(
            "record", partial(record_operations, sessions), record_batch_size_max
        )
        self.viewer: Batcher[int, OperationView] = Batcher(
            "view", partial(operation_views, sessions), VIEW_BATCH_SIZE_MAX
        )

    def start(self) -> None:
        self.recorder.start()
        self.viewer.start()

    def stop(self) -> None:
        self.recorder.stop()
        self.viewer.stop()

    async def record(self, new: NewOperation) -> Recorded:
        """Record `new` (or replay its key's operation); its refusal is raised."""
        return await self.recorder.submit(new)

    async def view(self, operation_id: int) -> OperationView:
        """The operation as its requester sees it now."""
        return await self.viewer.submit(operation_id)
