"""`alliance.netting` nets a period's conversions exactly.

Proves, without a chain: a worked example gives the documented pair flows, bilateral nets
(who pays whom) and multilateral nets; over random conversion days the multilateral nets
sum to zero, each bilateral net is the difference of the two gross flows, and currency
figures are exact (no rounding at any size); `decimal_text` prints every digit.
"""

from __future__ import annotations

from decimal import Decimal
from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.money import RATE_SCALE, quote_conversion
from alliance.netting import (
    DECIMAL_CONTEXT,
    BilateralNet,
    Conversion,
    bilateral_nets,
    currency,
    decimal_text,
    multilateral_nets,
    pair_flows,
)

RATES = {"bean": 10**16, "sky": 2 * 10**16, "cart": 5 * 10**15, "flix": 10**16}


def conversion(from_brand: str, to_brand: str, amount: int, fee_bps: int = 0) -> Conversion:
    rate_from, rate_to = RATES[from_brand], RATES[to_brand]
    quote = quote_conversion(amount, rate_from, rate_to, fee_bps)
    return Conversion(
        from_brand=from_brand,
        to_brand=to_brand,
        amount_in=amount,
        amount_out=quote.amount_out_points,
        fee_points=quote.fee_points,
        value_in=quote.value_in_units,
        rate_to=rate_to,
    )


def test_worked_example_nets_who_pays_whom() -> None:
    day = [
        conversion("bean", "sky", 1_000, fee_bps=100),  # 10 units bean → sky
        conversion("bean", "sky", 500),  # 5 units
        conversion("sky", "bean", 400),  # 8 units sky → bean
        conversion("cart", "bean", 2_000),  # 10 units cart → bean
    ]
    flows = pair_flows(day)
    assert [(f.from_brand, f.to_brand, f.count) for f in flows] == [
        ("bean", "sky", 2),
        ("cart", "bean", 1),
        ("sky", "bean", 1),
    ]
    bean_sky = flows[0]
    assert bean_sky.points_in == 1_500
    assert bean_sky.points_out == 495 + 250  # 500 gross less a 1% fee of 5, then 250
    assert bean_sky.fee_points == 5
    assert bean_sky.fee_value_units == 5 * RATES["sky"]
    assert bean_sky.value_units == 15 * RATE_SCALE
    assert bilateral_nets(flows) == [
        BilateralNet(payer="bean", payee="sky", value_units=7 * RATE_SCALE),
        BilateralNet(payer="cart", payee="bean", value_units=10 * RATE_SCALE),
    ]
    nets = multilateral_nets(flows, ["bean", "sky", "cart", "flix"])
    assert nets == {
        "bean": 3 * RATE_SCALE,  # receives 8 + 10, pays 15
        "cart": -10 * RATE_SCALE,
        "flix": 0,
        "sky": 7 * RATE_SCALE,
    }


def test_a_pair_that_cancels_exactly_has_no_bilateral_net() -> None:
    flows = pair_flows([conversion("bean", "flix", 700), conversion("flix", "bean", 700)])
    assert bilateral_nets(flows) == []
    assert multilateral_nets(flows, ["bean", "flix"]) == {"bean": 0, "flix": 0}


@pytest.mark.parametrize(
    ("units", "peg", "text"),
    [
        (0, Decimal(1), "0"),
        (RATE_SCALE, Decimal(1), "1"),
        (15 * RATE_SCALE // 10, Decimal(1), "1.5"),
        (-20 * RATE_SCALE, Decimal(1), "-20"),
        (1, Decimal(1), "0.000000000000000001"),
        (100 * RATE_SCALE, Decimal("0.01"), "1"),
        (
            2**256 - 1,
            Decimal("1.1"),
            "127371298161047814965928083509556698638596983132204620443403.3424087044426039285",
        ),
    ],
)
def test_currency_prints_every_digit(units: int, peg: Decimal, text: str) -> None:
    assert decimal_text(currency(units, peg)) == text


brand_codes = st.sampled_from(sorted(RATES))
conversions = st.builds(
    conversion,
    brand_codes,
    brand_codes,
    st.integers(min_value=1, max_value=10**30),
    st.integers(min_value=0, max_value=1_000),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(conversions, max_size=60))
def test_random_days_net_to_zero_and_bilateral_is_the_gross_difference(
    day: list[Conversion],
) -> None:
    flows = pair_flows(day)
    nets = multilateral_nets(flows, sorted(RATES))
    assert sum(nets.values()) == 0
    in_currency = [currency(value, Decimal("1.37")) for value in nets.values()]
    assert reduce(DECIMAL_CONTEXT.add, in_currency, Decimal(0)) == 0
    gross: dict[tuple[str, str], int] = {}
    for item in day:
        key = (item.from_brand, item.to_brand)
        gross[key] = gross.get(key, 0) + item.value_in
    for net in bilateral_nets(flows):
        forward = gross.get((net.payer, net.payee), 0)
        backward = gross.get((net.payee, net.payer), 0)
        assert net.value_units == forward - backward > 0
    for brand, value in nets.items():
        received = sum(v for (a, b), v in gross.items() if b == brand and a != b)
        paid = sum(v for (a, b), v in gross.items() if a == brand and a != b)
        assert value == received - paid
