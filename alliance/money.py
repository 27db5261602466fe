"""Pure conversion arithmetic, the Python twin of `contracts/exchange/ConversionMath.sol`.

Points are integers. Rates are alliance value units per point, scaled by `RATE_SCALE`
(1e18 = one unit per point). Every division names its rounding direction, and every one
rounds against the member, so a conversion never creates value.
"""

from __future__ import annotations

from dataclasses import dataclass

RATE_SCALE = 10**18
"""Fixed-point scale of rates: `RATE_SCALE` means one alliance value unit per point."""

BPS = 10_000
"""Basis points in one whole."""

AMOUNT_IN_MAX = 2**128 - 1
"""Largest amount a single conversion accepts (the contract's `AMOUNT_IN_MAX`)."""


def div_floor(numerator: int, denominator: int) -> int:
    """Integer division rounded down (towards zero for the non-negative values we use)."""
    assert numerator >= 0 and denominator > 0, (numerator, denominator)
    return numerator // denominator


def div_ceil(numerator: int, denominator: int) -> int:
    """Integer division rounded up."""
    assert numerator >= 0 and denominator > 0, (numerator, denominator)
    return -(-numerator // denominator)


@dataclass(frozen=True)
class ConversionQuote:
    """The outcome of converting `amount_in_points` at given rates and fee."""

    amount_in_points: int
    amount_out_points: int
    fee_points: int
    value_in_units: int
    """Value units (scaled by `RATE_SCALE`) that left the sending brand."""

    @property
    def gross_points(self) -> int:
        """Receiving-brand points before the fee."""
        return self.amount_out_points + self.fee_points


def quote_conversion(
    amount_in_points: int, rate_from_units: int, rate_to_units: int, fee_bps: int
) -> ConversionQuote:
    """Quote a conversion exactly as the exchange contract computes it."""
    value_in_units = amount_in_points * rate_from_units
    gross_points = div_floor(value_in_units, rate_to_units)
    fee_points = div_ceil(gross_points * fee_bps, BPS)
    return ConversionQuote(
        amount_in_points=amount_in_points,
        amount_out_points=gross_points - fee_points,
        fee_points=fee_points,
        value_in_units=value_in_units,
    )


def rate_from_points_per_unit(points_per_unit: int) -> int:
    """The scaled rate of a brand whose `points_per_unit` points equal one value unit.

    Only exact rates are accepted, so what a brand publishes is exactly what converts.
    """
    assert points_per_unit > 0, points_per_unit
    rate_units, remainder = divmod(RATE_SCALE, points_per_unit)
    assert remainder == 0, f"{points_per_unit} points per unit is not an exact rate"
    return rate_units
