"""The expiry step of a settlement run: warn brands of points about to expire, and burn
what expired, through the gateway's pipeline, exactly once.

Lots come from every `Transfer` of the brand tokens up to the period's closing block
(`settlement.lots`): a mint or a transfer in opens a lot, a burn or a transfer out consumes
the oldest. At the period's end:

- **Warnings.** Lots expiring within `warning_days` are sent to the brand's webhooks as
  `points.expiring`, one event per member, listing the lots. A lot is announced again only
  `notice_interval_days` (7: weekly) after its last notice (`expiry_notices`).
- **Burns.** For each member, the expired lots' points minus expiry burns already asked
  for but not yet in the indexed events are burned by one gateway operation of kind
  `expiry` (the token's `burn` with reason Expiry). The operation and its `expiry_burns`
  row, unique per (period, brand, member), commit together: a re-run or a run after a
  crash never asks twice, and the operation's request id makes the chain refuse a
  second application whatever happens after.

`create_operation` and `notify` are the gateway's (`gateway.services.operations`,
`gateway.webhooks.enqueue_brand_event`), passed in by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from eth_utils import keccak, to_checksum_address
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alliance.db.models import Member, Operation, OperationKind, OperationStatus
from alliance.db.risk import ExpiryBurnRecord, ExpiryNotice
from alliance.db.session import unit_of_work
from alliance.deploy_config import AllianceConfig
from alliance.events import ChainEvent, canonical_address
from settlement.lots import (
    ExpiryBurn,
    ExpiryPolicy,
    Holding,
    Holdings,
    LotDue,
    Position,
    burns,
    expired_lots,
    expiring_lots,
)

ZERO_ADDRESS = "0x" + "00" * 20
EXPIRING_EVENT = "points.expiring"
EVENT_NAMES = ("Transfer", "PointsBurned")
"""What the lots are replayed from (`LotReplay`): balances move by `Transfer`; expiry burns
are matched to their operations by the `PointsBurned` request id."""


class ExpirySettings(BaseSettings):
    """How far ahead members are warned, how often, and the limits of one run."""

    model_config = SettingsConfigDict(
        env_prefix="ALLIANCE_EXPIRY_", frozen=True, use_attribute_docstrings=True
    )

    warning_days: int = Field(default=30, ge=1, le=366)
    """Lots expiring within this many days after the period are announced to the brand."""

    notice_interval_days: int = Field(default=7, ge=1, le=366)
    """A lot is announced again at most this often (weekly: the cadence that gave the
    highest usage in published A/B tests)."""

    burns_per_transaction_max: int = Field(default=500, ge=1, le=10_000)
    """Expiry operations created per database transaction (short write transactions keep
    the gateway responsive on SQLite)."""

    notices_per_transaction_max: int = Field(default=500, ge=1, le=10_000)
    """Members announced per database transaction."""

    in_flight_lookback_days: int = Field(default=7, ge=1, le=366)
    """Confirmed expiry burns created this recently are checked against the indexed events
    (a burn confirmed after the closing block is not in them yet and must not be asked
    for again)."""


def policies_of(config: AllianceConfig) -> dict[str, ExpiryPolicy]:
    """Each brand's expiry policy from the deploy configuration (brands without one never
    expire points)."""
    return {
        brand.code: ExpiryPolicy(brand.expiry.kind, brand.expiry.months)
        for brand in config.brands
        if brand.expiry is not None
    }


# ---------------------------------------------------------------------------- pure


class LotReplay:
    """Every member's lots, and the (brand, request id) of every `PointsBurned`, one event
    at a time (in chain order), so one pass over the events can feed it and the fraud
    records together (`settlement.risk`)."""

    def __init__(self, token_brand: Mapping[str, str]) -> None:
        self.token_brand = token_brand
        """token address (lower-case) → brand code"""
        self.holdings: Holdings = {}
        self.burned: set[tuple[str, int]] = set()

    def add(self, event: ChainEvent, at: datetime) -> None:
        """The next event, mined at `at` (events other than `EVENT_NAMES` are ignored)."""
        if event.name == "Transfer":
            a = event.args
            sender, recipient = canonical_address(a["from"]), canonical_address(a["to"])
            token = event.address.lower()
            self.add_transfer(token, sender, recipient, int(a["value"]), event.position, at)
            return
        brand = self.token_brand.get(event.address.lower())
        if brand is not None and event.name == "PointsBurned":
            self.burned.add((brand, int(event.args["requestId"])))

    def add_transfer(
        self, token: str, sender: str, recipient: str, amount: int, position: Position, at: datetime
    ) -> None:
        """The next `Transfer` (the fast path of `add`: a busy day has millions); the token
        lower-case, the accounts as `canonical_address` gives them."""
        brand = self.token_brand.get(token)
        if brand is None:
            return
        # A debit of the sender, a credit of the recipient (mints and burns have one side),
        # applied straight to the holdings: a busy day has millions of Transfers.
        if sender != ZERO_ADDRESS:
            self._holding(sender, brand).debit(amount, at)
        if recipient != ZERO_ADDRESS:
            self._holding(recipient, brand).credit(amount, at, position)

    def _holding(self, member: str, brand: str) -> Holding:
        holding = self.holdings.get((member, brand))
        if holding is None:
            holding = self.holdings[(member, brand)] = Holding()
        return holding


def replay(
    events: Iterable[ChainEvent], times: Mapping[int, datetime], token_brand: Mapping[str, str]
) -> LotReplay:
    """One pass over the events (in chain order) through a `LotReplay`."""
    lots = LotReplay(token_brand)
    for event in events:
        lots.add(event, times[event.block_number])
    return lots


def burns_due(
    holdings: Holdings,
    policies: dict[str, ExpiryPolicy],
    now: datetime,
    in_flight: Mapping[tuple[str, str], int],
) -> list[ExpiryBurn]:
    """What to burn now: each member's expired points less the expiry burns already asked
    for that the holdings do not reflect yet ((brand, member) → points)."""
    due = []
    for burn in burns(expired_lots(holdings, policies, now)):
        remaining = burn.amount_points - in_flight.get((burn.brand, burn.member), 0)
        if remaining > 0:
            due.append(ExpiryBurn(burn.member, burn.brand, remaining, burn.lot_keys))
    return due


def expiry_brand_ref(period_id: int, brand: str, member: str) -> str:
    """The burn's brandRef: a hash naming the period, brand and member (deterministic, so
    an auditor can recompute it; no personal data)."""
    return keccak(text=f"expiry:{period_id}:{brand}:{member}").hex()


# ---------------------------------------------------------------------------- database


CreateOperation = Callable[..., Operation]
"""`gateway.services.operations.create_operation`."""
Notify = Callable[[Session, str, str, dict[str, Any]], int]
"""`gateway.webhooks.enqueue_brand_event`."""
AfterBatch = Callable[[int], None]
"""Called after each committed batch with the number of batches so far (a test's crash)."""


def in_flight_burns(
    session: Session, burned: set[tuple[str, int]], since: datetime
) -> dict[tuple[str, str], int]:
    """Expiry burns asked for but not among the indexed burns: unfinished operations, and
    confirmed ones created since `since` whose request id the events do not hold yet."""
    rows = session.execute(
        select(ExpiryBurnRecord, Operation.status, Operation.request_id)
        .join(Operation, Operation.id == ExpiryBurnRecord.operation_id)
        .where(Operation.status != OperationStatus.FAILED)
        .where(
            (Operation.status != OperationStatus.CONFIRMED) | (ExpiryBurnRecord.created_at >= since)
        )
    )
    pending: dict[tuple[str, str], int] = {}
    for record, status, request_id in rows:
        if status == OperationStatus.CONFIRMED and (record.brand_code, request_id) in burned:
            continue  # already in the holdings
        key = (record.brand_code, record.member_address)
        pending[key] = pending.get(key, 0) + record.amount_points
    return pending


def create_burns(
    session: Session,
    period_id: int,
    batch: list[ExpiryBurn],
    create_operation: CreateOperation,
) -> int:
    """One expiry operation and its record per burn not yet asked for in this period."""
    created = 0
    for burn in batch:
        exists = session.scalars(
            select(ExpiryBurnRecord.id)
            .where(ExpiryBurnRecord.period_id == period_id)
            .where(ExpiryBurnRecord.brand_code == burn.brand)
            .where(ExpiryBurnRecord.member_address == burn.member)
        ).first()
        if exists is not None:
            continue
        address = to_checksum_address(burn.member)
        member = session.scalars(select(Member).where(Member.address == address)).first()
        operation = create_operation(
            session,
            kind=OperationKind.EXPIRY,
            brand_code=burn.brand,
            member=member,
            params={
                "member_address": address,
                "amount": burn.amount_points,
                "token_brand": burn.brand,
                "brand_ref": expiry_brand_ref(period_id, burn.brand, burn.member),
                "period_id": period_id,
                "lots": len(burn.lot_keys),
            },
        )
        session.add(
            ExpiryBurnRecord(
                period_id=period_id,
                brand_code=burn.brand,
                member_address=burn.member,
                amount_points=burn.amount_points,
                lot_keys=list(burn.lot_keys),
                operation_id=operation.id,
            )
        )
        created += 1
    return created


def notice_lots(
    session: Session,
    lots: list[LotDue],
    period_id: int,
    now: datetime,
    interval: timedelta,
    notify: Notify,
) -> int:
    """Announce one member's lots that were not announced within `interval`; returns the
    number of lots announced."""
    fresh = []
    for lot in lots:
        notice = session.get(ExpiryNotice, (lot.brand, lot.member, lot.lot_key))
        if notice is not None and now - notice.notified_at < interval:
            continue
        if notice is None:
            notice = ExpiryNotice(brand_code=lot.brand, member_address=lot.member)
            notice.lot_key = lot.lot_key
            session.add(notice)
        notice.amount_points, notice.expires_at = lot.amount_points, lot.expires_at
        notice.notified_at, notice.period_id = now, period_id
        fresh.append(lot)
    if fresh:
        notify(session, fresh[0].brand, EXPIRING_EVENT, _expiring_document(session, fresh))
    return len(fresh)


def _expiring_document(session: Session, lots: list[LotDue]) -> dict[str, Any]:
    first = lots[0]
    address = to_checksum_address(first.member)
    member = session.scalars(select(Member).where(Member.address == address)).first()
    linked = member is not None and any(link.brand_code == first.brand for link in member.links)
    return {
        "brand": first.brand,
        "member_address": first.member,
        "member_id": member.public_id if member is not None and linked else None,
        "amount_points": str(sum(lot.amount_points for lot in lots)),
        "expires_at": min(lot.expires_at for lot in lots).isoformat(),
        "lots": [
            {
                "lot": lot.lot_key,
                "amount_points": str(lot.amount_points),
                "expires_at": lot.expires_at.isoformat(),
            }
            for lot in lots
        ],
    }


# ---------------------------------------------------------------------------- the step


@dataclass(frozen=True)
class ExpiryResult:
    """What one run did: points due, operations created, the lots expiring within the
    warning window (the members to warn), and how many of them were announced now."""

    burns_due: list[ExpiryBurn]
    operations_created: int
    expiring: list[LotDue]
    lots_announced: int


def expire(
    sessions: sessionmaker[Session],
    lots: LotReplay,
    *,
    period_id: int,
    now: datetime,
    policies: dict[str, ExpiryPolicy],
    settings: ExpirySettings,
    create_operation: CreateOperation,
    notify: Notify,
    after_batch: AfterBatch | None = None,
) -> ExpiryResult:
    """Warn and burn for the period ending at `now`, from `lots` replayed (`replay`, or the
    settlement run's shared pass) through every `Transfer` and `PointsBurned` of the brand
    tokens up to the closing block. Safe to repeat, and to repeat after a crash at any
    point."""
    holdings = lots.holdings
    since = now - timedelta(days=settings.in_flight_lookback_days)
    with sessions() as session:
        in_flight = in_flight_burns(session, lots.burned, since)
    due = burns_due(holdings, policies, now, in_flight)
    created = _create_in_batches(sessions, period_id, due, settings, create_operation, after_batch)
    soon = expiring_lots(holdings, policies, now, settings.warning_days)
    announced = _announce(sessions, soon, period_id, now, settings, notify)
    return ExpiryResult(due, created, soon, announced)


def _create_in_batches(
    sessions: sessionmaker[Session],
    period_id: int,
    due: list[ExpiryBurn],
    settings: ExpirySettings,
    create_operation: CreateOperation,
    after_batch: AfterBatch | None,
) -> int:
    created, size = 0, settings.burns_per_transaction_max
    for index, start in enumerate(range(0, len(due), size), start=1):
        with unit_of_work(sessions) as session:
            created += create_burns(session, period_id, due[start : start + size], create_operation)
        if after_batch is not None:
            after_batch(index)
    return created


def _announce(
    sessions: sessionmaker[Session],
    soon: list[LotDue],
    period_id: int,
    now: datetime,
    settings: ExpirySettings,
    notify: Notify,
) -> int:
    by_member: dict[tuple[str, str], list[LotDue]] = {}
    for lot in soon:
        by_member.setdefault((lot.brand, lot.member), []).append(lot)
    groups = list(by_member.values())
    interval = timedelta(days=settings.notice_interval_days)
    announced, size = 0, settings.notices_per_transaction_max
    for start in range(0, len(groups), size):
        with unit_of_work(sessions) as session:
            for lots in groups[start : start + size]:
                announced += notice_lots(session, lots, period_id, now, interval, notify)
    return announced
