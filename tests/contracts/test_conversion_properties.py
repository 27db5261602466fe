"""Conversion arithmetic and the exchange's limits hold for every input, not just examples.

Proves with hypothesis: (a) the contract's `ConversionMath.quote` (through the test-only
`ConversionMathHarness`) equals the Python twin `alliance.money.quote_conversion` bit for
bit over the whole input domain; (b) the quote never creates value, accounts for every
value unit (out + fee + dust) and rounds the fee up and the output down; (c) random
sequences of conversions on a pair with a small daily cap and bounds never let the day's
inflow pass the cap, never mint outside the bounds, and change total supplies by exactly
the `Converted` amounts; (d) a scheduled rate never applies before its `effectiveAt`,
whatever the notice period and however far beyond it the brand schedules.

Chain examples each run inside their own Anvil snapshot (`rolled_back`).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from alliance.governance import GovernedCall
from alliance.money import AMOUNT_IN_MAX, BPS, RATE_SCALE, div_ceil, div_floor, quote_conversion
from tests.support.alliance import DeployedAlliance, new_member
from tests.support.exchange import (
    DAY_S,
    block_timestamp,
    move_to_start_of_next_utc_day,
    reverts_with,
    rolled_back,
    set_next_block_timestamp,
)

RATE_MAX = 2**96 - 1
"""Rates are uint96 on chain."""
BEAN_RATE = 10**16
CART_RATE = 5 * 10**15

amounts = st.one_of(st.integers(0, 10**9), st.integers(0, AMOUNT_IN_MAX))
# Published rates divide RATE_SCALE exactly; arbitrary uint96 rates cover the rest.
rates = st.one_of(
    st.sampled_from([RATE_SCALE // ppu for ppu in (1, 2, 4, 5, 8, 10, 50, 100, 200, 1_000, 10**6)]),
    st.integers(1, RATE_MAX),
)
fees_bps = st.one_of(st.sampled_from([0, 1, 100, 9_999, BPS]), st.integers(0, BPS))
chain_settings = settings(
    deadline=None, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# ---------------------------------------------------------------------- (a) contract = Python


@pytest.fixture(scope="module")
def harness(deployed: DeployedAlliance) -> Any:
    """ConversionMathHarness, deployed once for this module (it is pure: no state to reset)."""
    contract, _ = deployed.client.deploy(
        deployed.parties.alliance["deployer"],
        deployed.compiled.load_artifact("ConversionMathHarness"),
    )
    return contract


@settings(deadline=None, max_examples=150)
@given(amount_in=amounts, rate_from=rates, rate_to=rates, fee_bps=fees_bps)
def test_contract_quote_equals_the_python_quote_exactly(
    harness, deployed, amount_in, rate_from, rate_to, fee_bps
):
    on_chain = deployed.call(harness.functions.quote(amount_in, rate_from, rate_to, fee_bps))

    python = quote_conversion(amount_in, rate_from, rate_to, fee_bps)
    assert tuple(on_chain) == (python.amount_out_points, python.fee_points, python.value_in_units)


# ---------------------------------------------------------------------- (b) the Python quote


@settings(max_examples=2_000)
@given(amount_in=amounts, rate_from=rates, rate_to=rates, fee_bps=fees_bps)
def test_quote_rounding_never_creates_value(amount_in, rate_from, rate_to, fee_bps):
    quote = quote_conversion(amount_in, rate_from, rate_to, fee_bps)

    assert (quote.amount_out_points + quote.fee_points) * rate_to <= quote.value_in_units
    assert quote.value_in_units == amount_in * rate_from


@settings(max_examples=2_000)
@given(amount_in=amounts, rate_from=rates, rate_to=rates, fee_bps=fees_bps)
def test_quote_accounts_for_every_value_unit_as_output_fee_or_dust(
    amount_in, rate_from, rate_to, fee_bps
):
    quote = quote_conversion(amount_in, rate_from, rate_to, fee_bps)

    dust = quote.value_in_units - (quote.amount_out_points + quote.fee_points) * rate_to
    assert 0 <= dust < rate_to
    assert (
        quote.value_in_units
        == quote.amount_out_points * rate_to + quote.fee_points * rate_to + dust
    )


@settings(max_examples=2_000)
@given(amount_in=amounts, rate_from=rates, rate_to=rates, fee_bps=fees_bps)
def test_quote_rounds_the_fee_up_and_the_output_down(amount_in, rate_from, rate_to, fee_bps):
    quote = quote_conversion(amount_in, rate_from, rate_to, fee_bps)
    gross = quote.gross_points

    assert gross == div_floor(amount_in * rate_from, rate_to)
    assert quote.fee_points == div_ceil(gross * fee_bps, BPS)
    assert quote.fee_points * BPS >= gross * fee_bps  # rounded up...
    assert (
        quote.fee_points == 0 or (quote.fee_points - 1) * BPS < gross * fee_bps
    )  # ...by under a point
    assert 0 <= quote.amount_out_points <= gross  # never above the fee-free floor
    assert quote.amount_out_points == div_floor(gross * (BPS - fee_bps), BPS)


@settings(max_examples=1_000)
@given(
    amount_in=st.integers(0, AMOUNT_IN_MAX - 1), rate_from=rates, rate_to=rates, fee_bps=fees_bps
)
def test_quote_never_gives_less_for_more_points_in(amount_in, rate_from, rate_to, fee_bps):
    less = quote_conversion(amount_in, rate_from, rate_to, fee_bps)
    more = quote_conversion(amount_in + 1, rate_from, rate_to, fee_bps)

    assert more.amount_out_points >= less.amount_out_points


@settings(max_examples=1_000)
@given(amount_in=amounts, rate_a=rates, rate_b=rates, fee_there=fees_bps, fee_back=fees_bps)
def test_converting_there_and_back_never_returns_more_points(
    amount_in, rate_a, rate_b, fee_there, fee_back
):
    there = quote_conversion(amount_in, rate_a, rate_b, fee_there)
    back = quote_conversion(there.amount_out_points, rate_b, rate_a, fee_back)

    assert back.amount_out_points <= amount_in


# ---------------------------------------------------------------------- (c) limits on chain


policies = st.fixed_dictionaries(
    {
        "fee_bps": st.sampled_from([0, 100, 2_500]),
        "min_amount_out": st.integers(0, 30),
        "max_amount_out": st.one_of(st.just(0), st.integers(30, 300)),
        "daily_cap": st.integers(1, 600),
    }
)
steps = st.lists(st.one_of(st.integers(1, 160), st.just("next day")), min_size=1, max_size=10)


def set_bean_to_cart_policy(alliance: DeployedAlliance, policy: dict[str, int]) -> None:
    bean, cart = alliance.tokens["bean"].address, alliance.tokens["cart"].address
    alliance.transact(
        alliance.brand_party("cart", "admin"),
        alliance.exchange.functions.setPairPolicy(
            bean,
            cart,
            True,
            policy["fee_bps"],
            policy["min_amount_out"],
            policy["max_amount_out"],
            policy["daily_cap"],
        ),
    )


def inflow_today(alliance: DeployedAlliance) -> int:
    bean, cart = alliance.tokens["bean"].address, alliance.tokens["cart"].address
    return int(alliance.call(alliance.exchange.functions.pairPolicy(bean, cart))[5])


def total_supply(alliance: DeployedAlliance, code: str) -> int:
    return int(alliance.call(alliance.tokens[code].functions.totalSupply()))


def expected_rejection(
    policy: dict[str, int], amount_out: int, inflow: int
) -> tuple[Any, ...] | None:
    """The error (name, arguments) the pair's limits give `amount_out`, or None if allowed."""
    minimum = max(policy["min_amount_out"], 1)
    if amount_out < minimum:
        return ("ExchangeBelowMinimum", amount_out, minimum)
    if policy["max_amount_out"] and amount_out > policy["max_amount_out"]:
        return ("ExchangeAboveMaximum", amount_out, policy["max_amount_out"])
    if inflow + amount_out > policy["daily_cap"]:
        return ("ExchangeDailyCapExceeded", inflow, amount_out, policy["daily_cap"])
    return None


@chain_settings
@given(policy=policies, plan=steps)
def test_conversions_never_pass_the_daily_cap_or_the_bounds_and_supplies_move_exactly(
    alliance, policy, plan
):
    with rolled_back(alliance):
        member = new_member().address
        alliance.deposit("bean", member, 10_000)
        set_bean_to_cart_policy(alliance, policy)
        move_to_start_of_next_utc_day(alliance)
        supply_before = {code: total_supply(alliance, code) for code in ("bean", "cart")}
        inflow, burned, minted = 0, 0, 0
        for step in plan:
            if step == "next day":
                alliance.advance_time(DAY_S)
                inflow = 0
            else:
                amount_out = quote_conversion(
                    step, BEAN_RATE, CART_RATE, policy["fee_bps"]
                ).amount_out_points
                rejection = expected_rejection(policy, amount_out, inflow)
                event(rejection[0] if rejection else "Converted")
                if rejection is not None:
                    with reverts_with(*rejection):
                        alliance.convert(member, "bean", "cart", step)
                else:
                    receipt = alliance.convert(member, "bean", "cart", step)
                    [converted] = alliance.events(receipt, alliance.exchange, "Converted")
                    assert (converted["amountIn"], converted["amountOut"]) == (step, amount_out)
                    assert max(policy["min_amount_out"], 1) <= amount_out
                    assert amount_out <= (policy["max_amount_out"] or amount_out)
                    inflow, burned, minted = inflow + amount_out, burned + step, minted + amount_out
            assert inflow_today(alliance) == inflow <= policy["daily_cap"]
        assert total_supply(alliance, "bean") == supply_before["bean"] - burned
        assert total_supply(alliance, "cart") == supply_before["cart"] + minted
        assert alliance.balance("cart", member) == minted


# ---------------------------------------------------------------------- (d) rate notice


@chain_settings
@given(
    notice_days=st.sampled_from([1, 7, 30]),
    extra_s=st.one_of(st.just(0), st.integers(0, 5 * DAY_S)),
    probe_offsets_s=st.lists(st.integers(-40 * DAY_S, 3 * DAY_S), max_size=4),
)
def test_a_scheduled_rate_never_applies_before_its_effective_time(
    alliance, notice_days, extra_s, probe_offsets_s
):
    new_rate = 3 * 10**16
    with rolled_back(alliance):
        if notice_days != 30:
            alliance.govern(
                [GovernedCall(alliance.exchange, "setNoticePeriod", (notice_days * DAY_S,))]
            )
        member = new_member().address
        alliance.deposit("bean", member, 100_000)
        scheduled_at = alliance.timestamp() + 1
        effective_at = scheduled_at + notice_days * DAY_S + extra_s
        set_next_block_timestamp(alliance, scheduled_at)
        alliance.transact(
            alliance.brand_party("bean", "admin"),
            alliance.exchange.functions.scheduleRate(
                alliance.tokens["bean"].address, new_rate, effective_at
            ),
        )
        probes = {effective_at + offset for offset in probe_offsets_s} | {
            effective_at - 1,
            effective_at,
        }
        for probe in sorted(time for time in probes if time > scheduled_at):
            set_next_block_timestamp(alliance, probe)
            receipt = alliance.convert(member, "bean", "sky", 1_000)
            assert block_timestamp(alliance, receipt) == probe
            [converted] = alliance.events(receipt, alliance.exchange, "Converted")
            assert converted["rateFrom"] == (new_rate if probe >= effective_at else BEAN_RATE)
            rate_now = alliance.call(
                alliance.exchange.functions.currentRate(alliance.tokens["bean"].address)
            )
            assert rate_now == converted["rateFrom"]
