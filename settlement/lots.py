"""Points as lots, consumed first in, first out; which lots expire, and when. Pure.

Every credit of a member's balance at a brand (a deposit, a conversion in, a gift in)
opens a lot dated by its block time; every debit (a withdrawal, an expiry burn, a
conversion out, a gift out) consumes the oldest lots first. So the points that expire
first are always the points that were earned first, and an expiry burn (a debit like any
other) consumes exactly the lots it expired.

Policies (`ExpiryPolicy`): a `fixed` term expires each lot `months` after it was opened;
a `rolling` term expires every lot of the member at that brand `months` after their last
movement there (any credit or debit).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

Position = tuple[int, int]
"""(block number, log index): a movement's place in chain order, and a lot's id."""


@dataclass(frozen=True)
class ExpiryPolicy:
    """How a brand's points expire."""

    kind: Literal["fixed", "rolling"]
    months: int


@dataclass(frozen=True)
class Movement:
    """One change of a member's balance at a brand."""

    member: str
    brand: str
    amount_points: int
    credit: bool
    at: datetime
    position: Position


@dataclass(slots=True)
class Lot:
    """Points that arrived together; `remaining_points` of them are still held."""

    position: Position
    opened_at: datetime
    amount_points: int
    remaining_points: int

    @property
    def key(self) -> str:
        """A stable id for the lot: the block and log index of the movement that opened it."""
        return f"{self.position[0]}:{self.position[1]}"


@dataclass(slots=True)
class Holding:
    """A member's lots at one brand, oldest first, and their last movement there."""

    lots: list[Lot] = field(default_factory=list)
    last_activity: datetime | None = None

    @property
    def held_points(self) -> int:
        return sum(lot.remaining_points for lot in self.lots)

    def apply(self, movement: Movement) -> None:
        """Open a lot for a credit; consume the oldest lots for a debit."""
        if movement.credit:
            self.credit(movement.amount_points, movement.at, movement.position)
        else:
            self.debit(movement.amount_points, movement.at)

    def credit(self, amount_points: int, at: datetime, position: Position) -> None:
        """Points in at `at`: a new lot (named by its `position`)."""
        assert amount_points >= 0, amount_points
        self.last_activity = at
        if amount_points:
            self.lots.append(Lot(position, at, amount_points, amount_points))

    def debit(self, amount_points: int, at: datetime) -> None:
        """Points out at `at`: the oldest lots first."""
        assert amount_points >= 0, amount_points
        self.last_activity = at
        owed = amount_points
        while owed:
            # The chain never lets a balance go negative: a debit above the lots is a bug in
            # how movements were read, never a member's doing. (Checked as the lots run
            # out, not by summing them first: that sum was a third of the replay.)
            assert self.lots, f"debit {amount_points} above what was held"
            oldest = self.lots[0]
            taken = min(owed, oldest.remaining_points)
            oldest.remaining_points -= taken
            owed -= taken
            if not oldest.remaining_points:
                self.lots.pop(0)


Holdings = dict[tuple[str, str], Holding]
"""(member, brand) → holding."""


def build_holdings(movements: Iterable[Movement], holdings: Holdings | None = None) -> Holdings:
    """Every member's lots from their movements, which come in chain order (streamed: a
    day of a million conversions is never held in memory as a list). Adds to `holdings`
    when given."""
    holdings = {} if holdings is None else holdings
    last: Position = (-1, -1)
    for movement in movements:
        assert movement.position >= last, "movements must come in chain order"
        last = movement.position
        apply_movement(holdings, movement)
    return holdings


def apply_movement(holdings: Holdings, movement: Movement) -> None:
    """One movement into its member's holding (movements must come in chain order)."""
    key = (movement.member, movement.brand)
    holding = holdings.get(key)
    if holding is None:
        holding = holdings[key] = Holding()
    holding.apply(movement)


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus calendar months; a day past the target month's end becomes its last day
    (31 January + 1 month = 28 or 29 February)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def lot_expiry(holding: Holding, lot: Lot, policy: ExpiryPolicy) -> datetime:
    """When `lot` expires under `policy`."""
    if policy.kind == "fixed":
        return add_months(lot.opened_at, policy.months)
    assert holding.last_activity is not None, "a holding with lots has moved"
    return add_months(holding.last_activity, policy.months)


@dataclass(frozen=True)
class LotDue:
    """Points of one lot and when they expire."""

    member: str
    brand: str
    lot_key: str
    amount_points: int
    expires_at: datetime


def due_lots(
    holdings: Holdings, policies: dict[str, ExpiryPolicy], start: datetime, end: datetime
) -> list[LotDue]:
    """Unconsumed points of lots expiring in `(start, end]`, in (brand, member, lot) order.
    Brands without a policy never expire."""
    due = []
    # A day's lots share a few thousand block times: each expiry is worked out once.
    expiry_of: dict[tuple[datetime, int], datetime] = {}
    for (member, brand), holding in holdings.items():
        policy = policies.get(brand)
        if policy is None:
            continue
        for lot in holding.lots:
            start_at = lot.opened_at if policy.kind == "fixed" else holding.last_activity
            assert start_at is not None, "a holding with lots has moved"
            expires_at = expiry_of.get((start_at, policy.months))
            if expires_at is None:
                expires_at = lot_expiry(holding, lot, policy)
                expiry_of[(start_at, policy.months)] = expires_at
            if expires_at > end:
                # Lots are oldest first and a later lot never expires earlier (a fixed term
                # runs from each lot's opening, a rolling term is the same for all lots).
                break
            if start < expires_at:
                due.append(LotDue(member, brand, lot.key, lot.remaining_points, expires_at))
    # Sorting the few due lots, not the million holdings; stable, so each holding's lots
    # stay oldest first.
    due.sort(key=lambda lot: (lot.brand, lot.member))
    return due


def expired_lots(
    holdings: Holdings, policies: dict[str, ExpiryPolicy], now: datetime
) -> list[LotDue]:
    """Every unconsumed lot whose expiry is at or before `now`."""
    return due_lots(holdings, policies, datetime.min.replace(tzinfo=now.tzinfo), now)


def expiring_lots(
    holdings: Holdings, policies: dict[str, ExpiryPolicy], now: datetime, horizon_days: int
) -> list[LotDue]:
    """Unconsumed lots that expire after `now` and within `horizon_days` of it."""
    return due_lots(holdings, policies, now, now + timedelta(days=horizon_days))


@dataclass(frozen=True)
class ExpiryBurn:
    """What to burn from one member at one brand, and the lots it expires."""

    member: str
    brand: str
    amount_points: int
    lot_keys: tuple[str, ...]


def burns(expired: Iterable[LotDue]) -> list[ExpiryBurn]:
    """One burn per (brand, member), summing its expired lots."""
    grouped: dict[tuple[str, str], list[LotDue]] = {}
    for lot in expired:
        grouped.setdefault((lot.brand, lot.member), []).append(lot)
    return [
        ExpiryBurn(
            member,
            brand,
            sum(due.amount_points for due in lots),
            tuple(due.lot_key for due in lots),
        )
        for (brand, member), lots in sorted(grouped.items())
    ]
