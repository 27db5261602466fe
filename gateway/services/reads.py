"""Reads: a member's balances and history, the rate book and the pair policies.

Balances, rates and policies come from the chain (an unreachable node raises
`chain_unavailable`); history comes from the gateway's own operations table. Nothing here
writes, so the callers use a plain session, not a unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from alliance.db.models import Member, Operation
from alliance.money import RATE_SCALE, div_floor
from gateway.ledger import Brand, Ledger
from gateway.services import members
from gateway.services.operations import OPERATION_ID_MAX

POINTS_PER_UNIT_DECIMALS = 6
"""Decimals shown for a rate whose points per unit is not a whole number (rounded down)."""


@dataclass(frozen=True)
class Balance:
    """A member's points at one brand, and whether that brand froze them."""

    brand: str
    balance: int
    frozen: bool


@dataclass(frozen=True)
class Rate:
    """A brand's rate in force and its pending schedule (value units scaled by 1e18)."""

    brand: str
    rate_units: str
    points_per_unit: str
    scheduled_rate_units: str | None
    scheduled_effective_at: datetime | None


@dataclass(frozen=True)
class PairPolicy:
    """The receiving brand's terms for conversions from one sending brand."""

    from_brand: str
    to_brand: str
    enabled: bool
    fee_bps: int
    min_amount_out: int
    max_amount_out: int
    daily_cap: int
    inflow_today: int


def member_balances(
    session: Session, ledger: Ledger, public_id: str, brand_code: str | None
) -> tuple[Member, list[Balance]]:
    """The member's balance and freeze at every brand of the alliance. A brand may read
    a member linked to it (they are its customer at the other brands too); others 404."""
    member = members.get_member(session, public_id, brand_code)
    balances = [
        Balance(
            brand=brand.code,
            balance=ledger.read(brand.token.functions.balanceOf(member.address)),
            frozen=ledger.read(ledger.exchange.functions.isFrozen(brand.address, member.address)),
        )
        for brand in ledger.brands.values()
    ]
    return member, balances


def member_history(
    session: Session,
    public_id: str,
    brand_code: str | None,
    cursor: int | None,
    limit: int,
) -> tuple[list[Operation], int | None]:
    """The member's operations, newest first, after `cursor` (an operation id), and the
    cursor of the next page. A brand sees only the operations it owns (`brand_code`)."""
    member = members.get_member(session, public_id, brand_code)
    query = select(Operation).where(Operation.member_id == member.id)
    if brand_code is not None:
        query = query.where(Operation.brand_code == brand_code)
    if cursor is not None and cursor <= OPERATION_ID_MAX:
        # A larger cursor excludes no id; binding it would overflow PostgreSQL's integer.
        query = query.where(Operation.id < cursor)
    rows = list(session.scalars(query.order_by(Operation.id.desc()).limit(limit + 1)))
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_cursor


def points_per_unit_text(rate_units: int) -> str:
    """How many points make one value unit at `rate_units`, as a decimal string: exact
    when whole, else `POINTS_PER_UNIT_DECIMALS` decimals rounded down."""
    assert rate_units > 0, rate_units
    whole, remainder = divmod(RATE_SCALE, rate_units)
    if remainder == 0:
        return str(whole)
    fraction = div_floor(remainder * 10**POINTS_PER_UNIT_DECIMALS, rate_units)
    text = f"{whole}.{fraction:0{POINTS_PER_UNIT_DECIMALS}d}".rstrip("0")
    return text.rstrip(".")


def rate(ledger: Ledger, brand_code: str) -> Rate:
    """The brand's rate in force and its scheduled rate, if one is pending."""
    brand = ledger.brand(brand_code)
    current = ledger.read(ledger.exchange.functions.currentRate(brand.address))
    scheduled, effective_at = ledger.read(ledger.exchange.functions.scheduledRate(brand.address))
    return Rate(
        brand=brand.code,
        rate_units=str(current),
        points_per_unit=points_per_unit_text(current),
        scheduled_rate_units=str(scheduled) if scheduled else None,
        scheduled_effective_at=datetime.fromtimestamp(effective_at, UTC) if scheduled else None,
    )


def rates(ledger: Ledger) -> list[Rate]:
    """Every brand's rate, in brand order."""
    return [rate(ledger, code) for code in ledger.brands]


def pair_policies(ledger: Ledger, to_brand: str | None = None) -> list[PairPolicy]:
    """The policy of every ordered pair of brands (or only those into `to_brand`)."""
    targets = [ledger.brand(to_brand)] if to_brand else list(ledger.brands.values())
    return [
        _pair_policy(ledger, source, target)
        for source in ledger.brands.values()
        for target in targets
        if source.code != target.code
    ]


def _pair_policy(ledger: Ledger, source: Brand, target: Brand) -> PairPolicy:
    enabled, fee_bps, min_out, max_out, cap, inflow = ledger.read(
        ledger.exchange.functions.pairPolicy(source.address, target.address)
    )
    return PairPolicy(source.code, target.code, enabled, fee_bps, min_out, max_out, cap, inflow)
