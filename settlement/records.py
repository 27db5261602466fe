"""From the database to the plain records the pure modules take (statements, reconcile).

Reads stream in chain order; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, sessionmaker

from alliance.db.models import ChainTransaction, Operation
from alliance.db.settlement import chain_events_table
from alliance.netting import Conversion
from alliance.statements import PeriodActivity
from settlement import reconcile
from settlement.reconcile import ChainRecord, GatewayRecord

REQUEST_EVENTS = ("PointsMinted", "PointsBurned", "Converted", "Gifted")
"""Events that carry a gateway request id and change balances."""

GATEWAY_KINDS = ("deposit", "withdrawal", "conversion", "gift", "expiry")
"""Operation kinds that put one request-carrying event on chain."""

LOOKUP_CHUNK = 500
"""Request ids per IN (...) lookup."""

STREAM_ROWS = 50_000


@dataclass(frozen=True)
class Addresses:
    """The alliance's contracts by role (lower-case)."""

    exchange: str
    anchor: str
    token_brand: Mapping[str, str]
    """token address → brand code"""
    brand_token: Mapping[str, str]
    """brand code → token address"""


@dataclass
class PeriodPass:
    """What one pass over the period's request-carrying events found."""

    activity: PeriodActivity
    """The period's events (opening to closing block), summed for the statements."""
    matched: list[tuple[ChainRecord, GatewayRecord | None]]
    """Each period event whose operation disagrees with it or does not claim it (events
    that agree with their operation are not kept: a busy day has millions)."""
    seen: OperationIds
    """Operations of the reconciled id range whose event the chain has, opening block to
    the index checkpoint (a request may land after the close yet before the check)."""


class OperationIds:
    """A set of operation ids in (low, high] as a bitmap: two million ids are 250 kB, where
    a set of them would take a hundred MB."""

    def __init__(self, low: int, high: int) -> None:
        self.low = low
        self.high = high
        self.bits = bytearray((max(high - low, 0) + 7) // 8)

    def __contains__(self, operation_id: object) -> bool:
        if not isinstance(operation_id, int) or not self.low < operation_id <= self.high:
            return False
        offset = operation_id - self.low - 1
        return bool(self.bits[offset >> 3] & (1 << (offset & 7)))

    def add(self, operation_id: int) -> None:
        if self.low < operation_id <= self.high:
            offset = operation_id - self.low - 1
            self.bits[offset >> 3] |= 1 << (offset & 7)


def period_pass(
    factory: sessionmaker[Session],
    addresses: Addresses,
    opening: int,
    closing: int,
    until: int,
    reconciled: tuple[int, int] | None,
) -> PeriodPass:
    """Read the request-carrying events of [opening, until] once, each joined to the
    gateway operation with its request id: events up to `closing` are the period's and are
    summed; with `reconciled` = (low, high), each is also matched to its operation, and the
    operations of (low, high] seen on chain are noted. Neither side is held in memory."""
    table = chain_events_table
    statement = (
        select(
            table.c.block_number,
            table.c.transaction_hash,
            table.c.address,
            table.c.name,
            table.c.request_id,
            table.c.account,
            table.c.amount,
            table.c.args,
            *_operation_columns(),
        )
        .select_from(table)
        .outerjoin(
            Operation,
            and_(Operation.request_id == table.c.request_id, Operation.kind.in_(GATEWAY_KINDS)),
        )
        .outerjoin(ChainTransaction, ChainTransaction.id == Operation.transaction_id)
        .where(
            table.c.name.in_(REQUEST_EVENTS),
            table.c.block_number >= opening,
            table.c.block_number <= until,
        )
        .order_by(table.c.block_number, table.c.log_index)
        .execution_options(yield_per=STREAM_ROWS)
    )
    low, high = reconciled or (0, 0)
    result = PeriodPass(PeriodActivity(), [], OperationIds(low, high))
    with factory() as session:
        for row in session.connection().execute(statement):
            if row.block_number <= closing:
                _add_activity(result.activity, row, addresses)
            if reconciled is None:
                continue
            event = chain_record(row, addresses)
            record = None if row.op_id is None else _gateway_record(row, addresses)
            if record is not None and record.contract != event.contract:
                record = None  # the same request id at another contract: not this operation
            if record is not None:
                result.seen.add(record.operation_id)
            if row.block_number <= closing and not reconcile.agrees(event, record):
                result.matched.append((event, record))
    return result


def unseen_operations(
    factory: sessionmaker[Session], addresses: Addresses, seen: OperationIds
) -> list[GatewayRecord]:
    """The operations of (seen.low, seen.high] that claim to be on chain (sent or
    confirmed) but are not in `seen`."""
    candidates = (
        select(Operation.id)
        .where(
            Operation.id > seen.low,
            Operation.id <= seen.high,
            Operation.kind.in_(GATEWAY_KINDS),
            Operation.request_id.is_not(None),
            Operation.status.in_(reconcile.MATCHED_STATUSES),
        )
        .execution_options(yield_per=STREAM_ROWS)
    )
    with factory() as session:
        unseen = [i for i in session.connection().execute(candidates).scalars() if i not in seen]
        records: list[GatewayRecord] = []
        for start in range(0, len(unseen), LOOKUP_CHUNK):
            chunk = unseen[start : start + LOOKUP_CHUNK]
            statement = _operations_statement().where(Operation.id.in_(chunk))
            records += [
                _gateway_record(r, addresses) for r in session.connection().execute(statement)
            ]
    return sorted(records, key=lambda record: record.operation_id)


def chain_record(row: Any, addresses: Addresses) -> ChainRecord:
    args = row.args
    brands = addresses.token_brand
    if row.name == "Converted":
        brand, amount_out = brands[args["fromToken"]], int(args["amountOut"])
    elif row.name == "Gifted":
        brand, amount_out = brands[args["token"]], None
    else:
        brand, amount_out = brands[row.address], None
    return ChainRecord(
        contract=row.address,
        request_id=row.request_id,
        name=row.name,
        brand_code=brand,
        account=row.account,
        amount=row.amount,
        amount_out=amount_out,
        transaction_hash=row.transaction_hash,
        block_number=row.block_number,
    )


def _add_activity(activity: PeriodActivity, row: Any, addresses: Addresses) -> None:
    args, brands = row.args, addresses.token_brand
    if row.name == "PointsMinted":
        activity.add_mint(brands[row.address], int(args["reason"]), row.amount)
    elif row.name == "PointsBurned":
        activity.add_burn(brands[row.address], int(args["reason"]), row.amount)
    elif row.name == "Gifted":
        activity.add_gift(brands[args["token"]], row.amount)
    else:
        activity.add_conversion(
            Conversion(
                from_brand=brands[args["fromToken"]],
                to_brand=brands[args["toToken"]],
                amount_in=row.amount,
                amount_out=int(args["amountOut"]),
                fee_points=int(args["feePoints"]),
                value_in=int(args["valueIn"]),
                rate_to=int(args["rateTo"]),
            )
        )


def _operation_columns() -> tuple[Any, ...]:
    """An operation's columns as `_gateway_record` reads them (labelled: they sit beside an
    event's columns in `period_pass`)."""
    return (
        Operation.id.label("op_id"),
        Operation.request_id.label("op_request_id"),
        Operation.kind.label("op_kind"),
        Operation.status.label("op_status"),
        Operation.brand_code.label("op_brand_code"),
        Operation.params.label("op_params"),
        Operation.result.label("op_result"),
        ChainTransaction.tx_hash.label("op_tx_hash"),
    )


def _operations_statement() -> Any:
    return (
        select(*_operation_columns())
        .outerjoin(ChainTransaction, ChainTransaction.id == Operation.transaction_id)
        .where(Operation.kind.in_(GATEWAY_KINDS), Operation.request_id.is_not(None))
    )


def _gateway_record(row: Any, addresses: Addresses) -> GatewayRecord:
    p, kind = row.op_params, row.op_kind
    if kind == "conversion":
        contract, brand, account = addresses.exchange, p["from_brand"], p["member_address"]
        amount = int(p["amount_in"])
        amount_out = int(row.op_result["amount_out"]) if row.op_result else None
    elif kind == "gift":
        contract, brand, account = addresses.exchange, p["brand"], p["from_address"]
        amount, amount_out = int(p["amount"]), None
    else:
        brand = p.get("token_brand", row.op_brand_code)
        contract, account = addresses.brand_token[brand], p["member_address"]
        amount, amount_out = int(p["amount"]), None
    return GatewayRecord(
        operation_id=row.op_id,
        contract=contract,
        request_id=row.op_request_id,
        kind=kind,
        status=row.op_status,
        brand_code=brand,
        account=account,
        amount=amount,
        amount_out=amount_out,
        transaction_hash=row.op_tx_hash,
    )


def operations_high_water(factory: sessionmaker[Session], low_id: int, young_before: Any) -> int:
    """The last operation id this period reconciles: every id so far, except that an
    unfinished operation younger than the grace period (and all after it) waits for the
    next period, so an operation is never judged while it is still on its way."""
    with factory() as session:
        top = session.scalar(select(func.max(Operation.id))) or 0
        young = session.scalar(
            select(func.min(Operation.id)).where(
                Operation.id > low_id,
                Operation.kind.in_(GATEWAY_KINDS),
                Operation.status.in_(("accepted", "submitted")),
                Operation.created_at > young_before,
            )
        )
    return int(top) if young is None else int(young) - 1


def balances_to_read(moved: Mapping[str, set[str]]) -> Sequence[tuple[str, str]]:
    """Every (token, account) that moved, in a stable order."""
    return [(token, account) for token in sorted(moved) for account in sorted(moved[token])]
