"""What the fraud rules read and what they produce: small frozen records, no I/O.

The settlement run builds these from the indexed chain events (and the exchange's rate and
pair-policy history); the rules never see a database row, a web3 object or personal data.
Members are pseudonymous addresses (lower-case 0x-hex); brands are brand codes. Amounts are
integer points; values are alliance value units scaled by 1e18 (`VALUE_SCALE`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

VALUE_SCALE = 10**18
"""Value units carry 18 decimals on chain (`valueIn` of a `Converted` event)."""


class Severity(enum.StrEnum):
    """How urgently an operator should look: `high` alerts are candidates for a freeze."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class Period:
    """One settlement period: `[start, end)` in UTC, and its id (`yyyymmdd`)."""

    period_id: int
    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True, slots=True)
class Conversion:
    """One `Converted` event."""

    request_id: int
    tx_hash: str
    member: str
    from_brand: str
    to_brand: str
    amount_in_points: int
    amount_out_points: int
    value_units: int
    at: datetime


@dataclass(frozen=True, slots=True)
class Gift:
    """One `Gifted` event."""

    request_id: int
    tx_hash: str
    brand: str
    sender: str
    recipient: str
    amount_points: int
    at: datetime


@dataclass(frozen=True, slots=True)
class DailyBalance:
    """A member's closing balance at a brand on `day` (only days on which it changed are
    needed: a day without a record carries the previous day's balance forward)."""

    member: str
    brand: str
    day: int
    """Day number (`date.toordinal()`), so trailing windows are integer arithmetic."""
    balance_points: int


@dataclass(frozen=True)
class RateChange:
    """A scheduled rate (not cancelled): `brand`'s rate becomes `new_rate_units` at
    `effective_at`, replacing `old_rate_units`."""

    brand: str
    old_rate_units: int
    new_rate_units: int
    effective_at: datetime


@dataclass(frozen=True)
class PairLimit:
    """The receiving brand's per-conversion maximum for a pair (0: no maximum)."""

    from_brand: str
    to_brand: str
    max_amount_out_points: int


@dataclass(frozen=True)
class EvidenceItem:
    """One movement an alert points at."""

    kind: str
    """`conversion`, `gift` or `balance`."""
    request_id: int | None
    tx_hash: str | None
    amount_points: int
    value_units: int | None
    at: datetime | None
    brands: tuple[str, ...]
    counterparty: str | None = None
    """The other member of a gift (an address)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "request_id": str(self.request_id) if self.request_id is not None else None,
            "tx_hash": self.tx_hash,
            "amount_points": str(self.amount_points),
            "value_units": str(self.value_units) if self.value_units is not None else None,
            "at": self.at.isoformat() if self.at is not None else None,
            "brands": list(self.brands),
            "counterparty": self.counterparty,
        }


@dataclass(frozen=True)
class Alert:
    """A rule's finding about one member in one period.

    `(period_id, rule, member, subject)` is its natural key: re-running a period finds the
    same alerts, so storing them by that key never duplicates one.
    """

    rule: str
    severity: Severity
    period_id: int
    member: str
    brands: tuple[str, ...]
    subject: str
    """What the alert is about within the member: a brand code or a pair `from>to`."""
    summary: str
    figures: dict[str, str] = field(default_factory=dict)
    """The numbers that crossed the threshold, and the threshold (decimal strings)."""
    items: tuple[EvidenceItem, ...] = ()

    @property
    def key(self) -> tuple[int, str, str, str]:
        return (self.period_id, self.rule, self.member, self.subject)

    def evidence_json(self) -> dict[str, Any]:
        """The evidence as stored and sent: figures and the movements, in chain order."""
        return {"figures": dict(self.figures), "items": [item.to_json() for item in self.items]}


def conversion_item(conversion: Conversion) -> EvidenceItem:
    return EvidenceItem(
        kind="conversion",
        request_id=conversion.request_id,
        tx_hash=conversion.tx_hash,
        amount_points=conversion.amount_in_points,
        value_units=conversion.value_units,
        at=conversion.at,
        brands=(conversion.from_brand, conversion.to_brand),
    )


def gift_item(gift: Gift) -> EvidenceItem:
    return EvidenceItem(
        kind="gift",
        request_id=gift.request_id,
        tx_hash=gift.tx_hash,
        amount_points=gift.amount_points,
        value_units=None,
        at=gift.at,
        brands=(gift.brand,),
        counterparty=gift.sender,
    )


@dataclass(frozen=True)
class FraudInputs:
    """Everything the rules read for one period.

    `conversions` holds the period's conversions plus those of the round-trip window before
    it (a round trip across midnight is caught in the period of its second leg);
    `balances` covers the spike window before the period's day and the day itself, for
    the holdings that moved on the day and on an earlier day of the window: the only ones
    the spike rule can flag (a busy day's other holdings would be millions of records).
    """

    period: Period
    day: int
    """The period's local date as an ordinal (`date.toordinal()`)."""
    conversions: tuple[Conversion, ...] = ()
    gifts: tuple[Gift, ...] = ()
    balances: tuple[DailyBalance, ...] = ()
    first_seen: dict[str, datetime] = field(default_factory=dict)
    """Each member's first appearance on chain (any movement of any brand)."""
    rate_changes: tuple[RateChange, ...] = ()
    pair_limits: tuple[PairLimit, ...] = ()

    def period_conversions(self) -> list[Conversion]:
        """The conversions of the period itself, in chain order (shared: do not modify)."""
        return self._period_conversions

    def period_conversions_by_member(self) -> dict[str, list[Conversion]]:
        """`period_conversions` grouped by member, each in chain order (shared: do not
        modify). Several rules read it; a busy day has a million members to group."""
        return self._period_conversions_by_member

    @cached_property
    def _period_conversions(self) -> list[Conversion]:
        return [c for c in self.conversions if self.period.contains(c.at)]

    @cached_property
    def _period_conversions_by_member(self) -> dict[str, list[Conversion]]:
        grouped: dict[str, list[Conversion]] = {}
        for conversion in self._period_conversions:
            grouped.setdefault(conversion.member, []).append(conversion)
        return grouped

    def period_gifts(self) -> list[Gift]:
        return [g for g in self.gifts if self.period.contains(g.at)]
