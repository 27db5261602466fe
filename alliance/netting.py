"""Pure netting of a period's conversions: pair flows, bilateral and multilateral nets.

A conversion from brand A to brand B burns the member's A points and mints B points, so A's
liability falls by `value_in` and B's rises. **A owes B `value_in`**, the whole value that
left A; B keeps the fee (`fee_points * rate_to`) and the rounding dust as revenue. Value
units are integers scaled by 1e18 (`alliance.money.RATE_SCALE`); a currency figure is
`value_units / 1e18 * peg`, an exact `Decimal` printed with all its digits.

Everything here is plain data in, plain data out, so the settlement service and the audit
tool compute the same figures with the same code from their own reads of the chain.
`FlowBook` accumulates conversions one at a time, so a day of millions of conversions
needs memory for the brand pairs only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Context, Decimal

from alliance.money import RATE_SCALE

DECIMAL_CONTEXT = Context(prec=200)
"""Enough digits that no currency figure of any uint256 amount is ever rounded."""


@dataclass(frozen=True, slots=True)
class Conversion:
    """One `Converted` event, with its tokens already mapped to brand codes."""

    from_brand: str
    to_brand: str
    amount_in: int
    amount_out: int
    fee_points: int
    value_in: int
    rate_to: int


@dataclass(slots=True)
class PairFlow:
    """Everything that moved from one brand to another in a period."""

    from_brand: str
    to_brand: str
    count: int = 0
    points_in: int = 0
    points_out: int = 0
    fee_points: int = 0
    fee_value_units: int = 0
    value_units: int = 0

    def add(self, conversion: Conversion) -> None:
        """Count one conversion of this pair."""
        assert (conversion.from_brand, conversion.to_brand) == (self.from_brand, self.to_brand)
        self.count += 1
        self.points_in += conversion.amount_in
        self.points_out += conversion.amount_out
        self.fee_points += conversion.fee_points
        self.fee_value_units += conversion.fee_points * conversion.rate_to
        self.value_units += conversion.value_in


@dataclass(frozen=True, slots=True)
class BilateralNet:
    """What `payer` owes `payee` after offsetting the two directions of a pair."""

    payer: str
    payee: str
    value_units: int


class FlowBook:
    """Accumulates conversions into pair flows (memory: one entry per brand pair)."""

    def __init__(self) -> None:
        self._flows: dict[tuple[str, str], PairFlow] = {}

    def add(self, conversion: Conversion) -> None:
        key = (conversion.from_brand, conversion.to_brand)
        flow = self._flows.get(key)
        if flow is None:
            flow = self._flows[key] = PairFlow(*key)
        flow.add(conversion)

    def flows(self) -> list[PairFlow]:
        """The pair flows, sorted by (from brand, to brand)."""
        return [self._flows[key] for key in sorted(self._flows)]


def pair_flows(conversions: Iterable[Conversion]) -> list[PairFlow]:
    """Gross flows per ordered brand pair, sorted by (from brand, to brand)."""
    book = FlowBook()
    for conversion in conversions:
        book.add(conversion)
    return book.flows()


def bilateral_nets(flows: Iterable[PairFlow]) -> list[BilateralNet]:
    """For each unordered pair: gross(A→B) - gross(B→A), stated as who pays whom.

    Pairs whose two directions cancel exactly are left out (nobody pays anybody). Sorted
    by (payer, payee).
    """
    gross: dict[tuple[str, str], int] = {}
    for flow in flows:
        key = (flow.from_brand, flow.to_brand)
        gross[key] = gross.get(key, 0) + flow.value_units
    nets = []
    for (a, b), a_to_b in gross.items():
        if a > b and (b, a) in gross:
            continue  # The pair is handled once, from its (lower, higher) side.
        net = a_to_b - gross.get((b, a), 0)
        if net > 0:
            nets.append(BilateralNet(payer=a, payee=b, value_units=net))
        elif net < 0:
            nets.append(BilateralNet(payer=b, payee=a, value_units=-net))
    return sorted(nets, key=lambda item: (item.payer, item.payee))


def multilateral_nets(flows: Iterable[PairFlow], brands: Iterable[str]) -> dict[str, int]:
    """Net position of every brand: value received minus value paid (positive: receives).

    Every brand of `brands` gets an entry (zero if it did not convert); the nets sum to
    zero across the alliance, which is asserted: a non-zero sum is a bug, not an input error.
    """
    nets = dict.fromkeys(brands, 0)
    for flow in flows:
        nets[flow.to_brand] = nets.get(flow.to_brand, 0) + flow.value_units
        nets[flow.from_brand] = nets.get(flow.from_brand, 0) - flow.value_units
    assert sum(nets.values()) == 0, f"multilateral nets do not sum to zero: {nets}"
    return dict(sorted(nets.items()))


def value_totals(flows: Iterable[PairFlow]) -> tuple[dict[str, int], dict[str, int]]:
    """(value paid out, value received) per brand, from the pair flows."""
    value_out: dict[str, int] = {}
    value_in: dict[str, int] = {}
    for flow in flows:
        value_out[flow.from_brand] = value_out.get(flow.from_brand, 0) + flow.value_units
        value_in[flow.to_brand] = value_in.get(flow.to_brand, 0) + flow.value_units
    return value_out, value_in


def currency(value_units: int, peg: Decimal) -> Decimal:
    """The exact currency amount of `value_units` at `peg` currency per value unit."""
    return DECIMAL_CONTEXT.multiply(
        DECIMAL_CONTEXT.divide(Decimal(value_units), Decimal(RATE_SCALE)), peg
    )


def decimal_text(amount: Decimal) -> str:
    """All the digits of `amount`, no exponent, no trailing zeros ("1.5", "-20", "0")."""
    if amount == 0:
        return "0"
    return format(DECIMAL_CONTEXT.plus(amount).normalize(DECIMAL_CONTEXT), "f")


def currency_text(value_units: int, peg: Decimal) -> str:
    """`currency(value_units, peg)` as text (what the statements print)."""
    return decimal_text(currency(value_units, peg))
