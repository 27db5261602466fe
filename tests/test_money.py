"""`alliance.money` computes conversions exactly as the contract does, rounding as it says.

Proves, without a chain: `div_floor` and `div_ceil` round down and up and refuse values
outside their domain (a broken invariant crashes, it is not an error); `quote_conversion`
gives the documented results on a table of worked examples (the contract's twin is compared
with it in tests/contracts/test_conversion_properties.py); `rate_from_points_per_unit`
accepts only exact rates.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.money import (
    AMOUNT_IN_MAX,
    BPS,
    RATE_SCALE,
    ConversionQuote,
    div_ceil,
    div_floor,
    quote_conversion,
    rate_from_points_per_unit,
)

BEAN = 10**16  # 100 points per unit
SKY = 2 * 10**16  # 50 points per unit
CART = 5 * 10**15  # 200 points per unit
RATE_MAX = 2**96 - 1


@pytest.mark.parametrize(
    ("numerator", "denominator", "floor", "ceil"),
    [
        (0, 1, 0, 0),
        (0, 7, 0, 0),
        (6, 3, 2, 2),
        (7, 3, 2, 3),
        (8, 3, 2, 3),
        (1, 10**18, 0, 1),
        (10**18 - 1, 10**18, 0, 1),
        (2**256 - 1, 2, 2**255 - 1, 2**255),
    ],
)
def test_div_floor_rounds_down_and_div_ceil_rounds_up(numerator, denominator, floor, ceil):
    assert (div_floor(numerator, denominator), div_ceil(numerator, denominator)) == (floor, ceil)


@settings(max_examples=500)
@given(numerator=st.integers(0, 2**256), denominator=st.integers(1, 2**128))
def test_div_floor_and_div_ceil_bracket_the_exact_quotient(numerator, denominator):
    floor, ceil = div_floor(numerator, denominator), div_ceil(numerator, denominator)

    assert floor * denominator <= numerator < (floor + 1) * denominator
    assert (ceil - 1) * denominator < numerator <= ceil * denominator
    assert ceil - floor == (0 if numerator % denominator == 0 else 1)


@pytest.mark.parametrize(("numerator", "denominator"), [(-1, 3), (3, 0), (3, -1)])
@pytest.mark.parametrize("divide", [div_floor, div_ceil])
def test_division_outside_its_domain_is_a_broken_invariant(divide, numerator, denominator):
    with pytest.raises(AssertionError):
        divide(numerator, denominator)


@pytest.mark.parametrize(
    ("amount_in", "rate_from", "rate_to", "fee_bps", "amount_out", "fee", "value_in"),
    [
        # 1,000 BEAN = 10 units = 500 SKY; 1% fee.
        (1_000, BEAN, SKY, 100, 495, 5, 10**19),
        # 617 SKY gross: the 1% fee of 6.17 rounds up to 7.
        (1_234, BEAN, SKY, 100, 610, 7, 1_234 * BEAN),
        # Half a SKY point rounds down to nothing; no fee on nothing.
        (1, BEAN, SKY, 100, 0, 0, BEAN),
        # 1 SKY = 2 BEAN; the 1% fee of 0.02 still costs a whole point.
        (1, SKY, BEAN, 100, 1, 1, SKY),
        # BEAN -> CART doubles the points; no fee.
        (2_500, BEAN, CART, 0, 5_000, 0, 2_500 * BEAN),
        # 777 CART = 388.5 BEAN: the half point is dust, the 1% fee of 3.88 rounds to 4.
        (777, CART, BEAN, 100, 384, 4, 777 * CART),
        # A 100% fee withholds everything.
        (1_000, BEAN, SKY, BPS, 0, 500, 10**19),
        # Same rate both sides, no fee: points pass through one for one.
        (123_456, BEAN, BEAN, 0, 123_456, 0, 123_456 * BEAN),
        # Zero in, zero out.
        (0, BEAN, SKY, 100, 0, 0, 0),
        # The largest amount at the largest rates stays exact (Python ints, uint256 on chain).
        (AMOUNT_IN_MAX, RATE_MAX, 1, 0, AMOUNT_IN_MAX * RATE_MAX, 0, AMOUNT_IN_MAX * RATE_MAX),
    ],
)
def test_quote_conversion_matches_worked_examples(
    amount_in, rate_from, rate_to, fee_bps, amount_out, fee, value_in
):
    quote = quote_conversion(amount_in, rate_from, rate_to, fee_bps)

    assert quote == ConversionQuote(
        amount_in_points=amount_in,
        amount_out_points=amount_out,
        fee_points=fee,
        value_in_units=value_in,
    )
    assert quote.gross_points == amount_out + fee


@pytest.mark.parametrize(
    ("points_per_unit", "rate"),
    [
        (1, RATE_SCALE),
        (50, SKY),
        (100, BEAN),
        (200, CART),
        (1_024, RATE_SCALE // 1_024),
        (10**18, 1),
    ],
)
def test_rate_from_points_per_unit_scales_exact_rates(points_per_unit, rate):
    assert rate_from_points_per_unit(points_per_unit) == rate
    assert rate * points_per_unit == RATE_SCALE


@pytest.mark.parametrize("points_per_unit", [0, -100, 3, 7, 10**18 + 1])
def test_rate_from_points_per_unit_refuses_inexact_or_non_positive_rates(points_per_unit):
    with pytest.raises(AssertionError):
        rate_from_points_per_unit(points_per_unit)
