"""Custodial conversions burn and mint exactly, and every guard refuses with its error.

Proves, against the real contracts on Anvil (tests/support/alliance.py TEST_CONFIG): a
conversion burns `amountIn`, mints `amountOut` and emits one `Converted` event with every
field right plus the two `Transfer` events; `quote` equals what `convert` then does; and each
guard (replayed request id, passed deadline, member minimum, disabled pair, pair minimum,
maximum and daily cap, same brand, unknown token, invalid amount, insufficient balance,
output rounding to zero) reverts with its custom error and arguments and changes nothing.
Self-custody, freezes and gifts are in test_exchange_members.py, batches in
test_exchange_batch.py.
"""

from __future__ import annotations

import pytest

from alliance.money import AMOUNT_IN_MAX, quote_conversion
from tests.support.alliance import new_member, next_request_id
from tests.support.exchange import (
    DAY_S,
    RATES,
    ZERO_ADDRESS,
    balances,
    block_timestamp,
    emitted,
    funded_member,
    is_processed,
    move_to_start_of_next_utc_day,
    reverts_with,
    set_next_block_timestamp,
    supplies,
)

# ---------------------------------------------------------------------- custodial conversions


def test_conversion_burns_and_mints_exactly_and_emits_one_complete_converted_event(alliance):
    member = funded_member(alliance, amount=1_500)
    before = supplies(alliance)
    request = alliance.conversion(member, "bean", "sky", 1_234)

    receipt = alliance.transact(alliance.operator, alliance.exchange.functions.convert(request))

    # 1,234 BEAN = 12.34 units = 617 SKY gross; 1% fee rounded up = 7 SKY.
    value_in = 1_234 * RATES["bean"]
    assert alliance.events(receipt, alliance.exchange, "Converted") == [
        {
            "requestId": request[0],
            "member": member,
            "fromToken": alliance.tokens["bean"].address,
            "toToken": alliance.tokens["sky"].address,
            "amountIn": 1_234,
            "amountOut": 610,
            "feePoints": 7,
            "valueIn": value_in,
            "rateFrom": RATES["bean"],
            "rateTo": RATES["sky"],
            "feeBps": 100,
        }
    ]
    assert emitted(alliance, receipt, alliance.tokens["bean"], "Transfer") == [
        {"from": member, "to": ZERO_ADDRESS, "value": 1_234}
    ]
    assert emitted(alliance, receipt, alliance.tokens["sky"], "Transfer") == [
        {"from": ZERO_ADDRESS, "to": member, "value": 610}
    ]
    assert balances(alliance, member) == {"bean": 266, "sky": 610, "cart": 0}
    after = supplies(alliance)
    assert (after["bean"], after["sky"], after["cart"]) == (
        before["bean"] - 1_234,
        before["sky"] + 610,
        before["cart"],
    )
    assert is_processed(alliance, request[0])


@pytest.mark.parametrize(
    ("from_code", "to_code", "amount_in"),
    [("bean", "sky", 1_234), ("sky", "bean", 999), ("bean", "cart", 2_345), ("cart", "bean", 777)],
)
def test_quote_equals_what_the_conversion_then_applies(alliance, from_code, to_code, amount_in):
    member = funded_member(alliance, from_code, amount_in)
    quoted = alliance.call(
        alliance.exchange.functions.quote(
            alliance.tokens[from_code].address, alliance.tokens[to_code].address, amount_in
        )
    )

    receipt = alliance.convert(member, from_code, to_code, amount_in)

    [converted] = alliance.events(receipt, alliance.exchange, "Converted")
    assert tuple(quoted) == (converted["amountOut"], converted["feePoints"], converted["valueIn"])
    python = quote_conversion(amount_in, RATES[from_code], RATES[to_code], converted["feeBps"])
    assert tuple(quoted) == (python.amount_out_points, python.fee_points, python.value_in_units)


def test_quote_rejects_an_amount_above_the_maximum(alliance):
    bean, sky = alliance.tokens["bean"].address, alliance.tokens["sky"].address
    with reverts_with("ExchangeInvalidAmount", AMOUNT_IN_MAX + 1, AMOUNT_IN_MAX):
        alliance.call(alliance.exchange.functions.quote(bean, sky, AMOUNT_IN_MAX + 1))


def test_conversion_rejects_a_replayed_request_id_and_changes_nothing(alliance):
    member = funded_member(alliance)
    request_id = next_request_id()
    alliance.convert(member, "bean", "sky", 1_000, request_id=request_id)
    before = (balances(alliance, member), supplies(alliance))

    with reverts_with("ExchangeRequestAlreadyProcessed", request_id):
        alliance.convert(member, "bean", "sky", 1_000, request_id=request_id)
    # A replay with different terms is the same request id and is refused the same way.
    with reverts_with("ExchangeRequestAlreadyProcessed", request_id):
        alliance.convert(member, "bean", "cart", 500, request_id=request_id)

    assert (balances(alliance, member), supplies(alliance)) == before


def test_conversion_rejects_a_passed_deadline(alliance):
    member = funded_member(alliance)
    now = alliance.timestamp()

    with reverts_with("ExchangeDeadlinePassed", now - 1, now):
        alliance.convert(member, "bean", "sky", 1_000, deadline=now - 1)


def test_conversion_accepts_a_deadline_equal_to_the_block_time(alliance):
    member = funded_member(alliance)
    deadline = alliance.timestamp() + 1
    set_next_block_timestamp(alliance, deadline)

    receipt = alliance.convert(member, "bean", "sky", 1_000, deadline=deadline)

    assert block_timestamp(alliance, receipt) == deadline
    assert len(alliance.events(receipt, alliance.exchange, "Converted")) == 1


def test_conversion_rejects_an_output_below_the_members_minimum(alliance):
    member = funded_member(alliance)

    with reverts_with("ExchangeInsufficientOutput", 495, 496):
        alliance.convert(member, "bean", "sky", 1_000, min_amount_out=496)

    receipt = alliance.convert(member, "bean", "sky", 1_000, min_amount_out=495)
    assert alliance.events(receipt, alliance.exchange, "Converted")[0]["amountOut"] == 495


def test_conversion_rejects_a_pair_the_receiving_brand_disabled(alliance):
    member = funded_member(alliance, "cart")
    cart, sky = alliance.tokens["cart"].address, alliance.tokens["sky"].address

    with reverts_with("ExchangePairDisabled", cart, sky):
        alliance.convert(member, "cart", "sky", 1_000)


def test_conversion_rejects_an_output_below_the_pair_minimum(alliance):
    member = funded_member(alliance)

    # bean -> cart: 1 BEAN = 2 CART, no fee, minimum 10 CART.
    with reverts_with("ExchangeBelowMinimum", 8, 10):
        alliance.convert(member, "bean", "cart", 4)

    receipt = alliance.convert(member, "bean", "cart", 5)
    assert alliance.events(receipt, alliance.exchange, "Converted")[0]["amountOut"] == 10


def test_conversion_rejects_an_output_above_the_pair_maximum(alliance):
    member = funded_member(alliance)

    with reverts_with("ExchangeAboveMaximum", 5_002, 5_000):
        alliance.convert(member, "bean", "cart", 2_501)

    receipt = alliance.convert(member, "bean", "cart", 2_500)
    assert alliance.events(receipt, alliance.exchange, "Converted")[0]["amountOut"] == 5_000


def test_conversion_rejects_inflow_above_the_daily_cap_until_the_next_utc_day(alliance):
    member = funded_member(alliance)
    bean, cart = alliance.tokens["bean"].address, alliance.tokens["cart"].address
    move_to_start_of_next_utc_day(alliance)
    alliance.convert(member, "bean", "cart", 2_500)  # 5,000 CART
    alliance.convert(member, "bean", "cart", 1_499)  # 2,998 CART: 7,998 of 8,000 today

    with reverts_with("ExchangeDailyCapExceeded", 7_998, 10, 8_000):
        alliance.convert(member, "bean", "cart", 5)
    assert alliance.call(alliance.exchange.functions.pairPolicy(bean, cart))[5] == 7_998

    alliance.advance_time(DAY_S)
    assert alliance.call(alliance.exchange.functions.pairPolicy(bean, cart))[5] == 0
    alliance.convert(member, "bean", "cart", 2_500)
    alliance.convert(member, "bean", "cart", 1_500)  # exactly the cap
    assert alliance.call(alliance.exchange.functions.pairPolicy(bean, cart))[5] == 8_000
    with reverts_with("ExchangeDailyCapExceeded", 8_000, 10, 8_000):
        alliance.convert(member, "bean", "cart", 5)


def test_conversion_rejects_the_same_brand_on_both_sides(alliance):
    member = funded_member(alliance)

    with reverts_with("ExchangeSameBrand", alliance.tokens["bean"].address):
        alliance.convert(member, "bean", "bean", 1_000)


@pytest.mark.parametrize("unknown_side", ["from", "to"])
def test_conversion_rejects_a_token_that_is_not_a_listed_brand(alliance, unknown_side):
    member = funded_member(alliance)
    stranger = new_member().address
    request = list(alliance.conversion(member, "bean", "sky", 1_000))
    request[2 if unknown_side == "from" else 3] = stranger

    with reverts_with("ExchangeUnknownBrand", stranger):
        alliance.transact(alliance.operator, alliance.exchange.functions.convert(tuple(request)))


@pytest.mark.parametrize("amount_in", [0, AMOUNT_IN_MAX + 1])
def test_conversion_rejects_an_amount_that_is_zero_or_too_large(alliance, amount_in):
    member = funded_member(alliance)

    with reverts_with("ExchangeInvalidAmount", amount_in, AMOUNT_IN_MAX):
        alliance.convert(member, "bean", "sky", amount_in)


def test_conversion_rejects_more_points_than_the_member_holds(alliance):
    member = funded_member(alliance, amount=999)

    with reverts_with("ERC20InsufficientBalance", member, 999, 1_000):
        alliance.convert(member, "bean", "sky", 1_000)


def test_conversion_rejects_an_output_that_rounds_to_zero(alliance):
    member = funded_member(alliance)

    # 1 BEAN = 0.01 unit = half a SKY point, rounded down to nothing.
    with reverts_with("ExchangeBelowMinimum", 0, 1):
        alliance.convert(member, "bean", "sky", 1)
