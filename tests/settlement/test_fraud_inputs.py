"""The fraud records built from events (`settlement.fraud.inputs.FraudReplay`). Pure.

The spike rule's daily balances come from a replay that keeps only what the rule can
flag; a hypothesis test compares them with a point-by-point model that records every
holding's closing balance on every day of the window and then keeps the holdings that
moved on the period's day and on an earlier day of it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from alliance.events import ChainEvent
from settlement.fraud.inputs import fraud_inputs
from settlement.fraud.records import DailyBalance, Period
from settlement.fraud.settings import FraudSettings

ZERO = "0x" + "00" * 20
TOKENS = {"0x" + "aa" * 20: "bean", "0x" + "bb" * 20: "sky"}
MEMBERS = ["0x" + f"{n:02x}" * 20 for n in (1, 2, 3)]
START = datetime(2026, 11, 22, tzinfo=UTC)
PERIOD = Period(20261122, START, START + timedelta(days=1))
SETTINGS = FraudSettings(spike_window_days=5)

# (days before the period's day, token, member, credit?, amount): a mint or a burn.
moves = st.lists(
    st.tuples(
        st.integers(0, 8),
        st.sampled_from(sorted(TOKENS)),
        st.sampled_from(MEMBERS),
        st.booleans(),
        st.integers(1, 50),
    ),
    max_size=40,
)


def events_of(plan: list[tuple[int, str, str, bool, int]]) -> tuple[list[ChainEvent], dict]:
    """Transfers in chain order (oldest day first), burns only of what is held."""
    held: dict[tuple[str, str], int] = {}
    events, times = [], {}
    ordered = sorted(enumerate(plan), key=lambda item: (-item[1][0], item[0]))
    for block, (_, (days_before, token, member, credit, amount)) in enumerate(ordered, 1):
        if not credit:
            amount = min(amount, held.get((token, member), 0))
            if not amount:
                continue
        held[(token, member)] = held.get((token, member), 0) + (amount if credit else -amount)
        sender, recipient = (ZERO, member) if credit else (member, ZERO)
        args = {"from": sender, "to": recipient, "value": amount}
        events.append(ChainEvent("Transfer", token, block, 0, "0x" + "cc" * 32, args))
        times[block] = START - timedelta(days=days_before) + timedelta(minutes=block)
    return events, times


def model(events: list[ChainEvent], times: dict) -> tuple[DailyBalance, ...]:
    day = START.date().toordinal()
    balance: dict[tuple[str, str], int] = {}
    daily: dict[tuple[str, str, int], int] = {}
    for event in events:
        on = times[event.block_number].date().toordinal()
        brand = TOKENS[event.address]
        for account, sign in ((event.args["from"], -1), (event.args["to"], 1)):
            if account != ZERO:
                key = (account, brand)
                balance[key] = balance.get(key, 0) + sign * event.args["value"]
                if on >= day - SETTINGS.spike_window_days:
                    daily[(account, brand, on)] = balance[key]
    today = {(m, b) for m, b, on in daily if on == day}
    earlier = {(m, b) for m, b, on in daily if on < day}
    return tuple(
        DailyBalance(m, b, on, points)
        for (m, b, on), points in sorted(daily.items())
        if (m, b) in today & earlier
    )


@given(moves)
def test_spike_balances_are_the_window_history_of_holdings_that_moved_today(plan) -> None:
    events, times = events_of(plan)
    inputs = fraud_inputs(events, times, TOKENS, PERIOD, UTC, SETTINGS)
    assert inputs.balances == model(events, times)


def test_a_holding_new_today_or_quiet_today_gives_no_spike_records() -> None:
    plan = [(0, "0x" + "aa" * 20, MEMBERS[0], True, 10), (3, "0x" + "bb" * 20, MEMBERS[1], True, 5)]
    events, times = events_of(plan)
    assert fraud_inputs(events, times, TOKENS, PERIOD, UTC, SETTINGS).balances == ()


def test_a_holding_with_history_that_moves_today_gives_its_days() -> None:
    bean = "0x" + "aa" * 20
    plan = [
        (2, bean, MEMBERS[0], True, 10),
        (1, bean, MEMBERS[0], True, 5),
        (0, bean, MEMBERS[0], True, 30),
    ]
    events, times = events_of(plan)
    day = START.date().toordinal()
    assert fraud_inputs(events, times, TOKENS, PERIOD, UTC, SETTINGS).balances == (
        DailyBalance(MEMBERS[0], "bean", day - 2, 10),
        DailyBalance(MEMBERS[0], "bean", day - 1, 15),
        DailyBalance(MEMBERS[0], "bean", day, 45),
    )
