"""The fraud rules, as pure functions over records.

Proves: a clean day raises no alert; each rule's scenario (tests/settlement/fraud_days.py)
raises that rule's alert, about the member who did it, and no other rule's; thresholds sit
exactly where the settings put them (table-driven, one row per boundary); and, by property,
the alerts do not depend on the order of the records and velocity fires exactly for the
members over the limit.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.fraud import RULES, FraudSettings, evaluate
from settlement.fraud.records import Conversion, DailyBalance, PairLimit
from settlement.fraud.rules import trailing_balances
from tests.settlement.fraud_days import (
    DAY,
    ORDINARY,
    PERIOD,
    START,
    add,
    at,
    clean_day,
    conversion,
    gift,
    member,
    scenario,
    steady_balances,
)

DEFAULTS = FraudSettings()


def test_clean_day_raises_no_alert() -> None:
    assert evaluate(clean_day(), DEFAULTS) == []


@pytest.mark.parametrize("rule", sorted(RULES))
def test_scenario_raises_its_rule_and_no_other(rule: str) -> None:
    alerts = evaluate(scenario(rule), DEFAULTS)
    assert [(a.rule, a.member) for a in alerts] == [(rule, member("mal"))]
    alert = alerts[0]
    assert alert.period_id == PERIOD.period_id
    assert alert.items, "an alert carries its evidence"
    assert alert.brands and all(b in ("bean", "sky", "cart") for b in alert.brands)


def test_evidence_names_request_ids_and_transactions() -> None:
    (alert,) = evaluate(scenario("round_trip"), DEFAULTS)
    evidence = alert.evidence_json()
    assert [item["brands"] for item in evidence["items"]] == [["bean", "sky"], ["sky", "bean"]]
    assert all(item["request_id"] and item["tx_hash"] for item in evidence["items"])
    assert evidence["items"][0]["amount_points"] == "1000"


def _count(rule: str, inputs: object) -> int:
    return len(RULES[rule](inputs, DEFAULTS))  # type: ignore[arg-type]


def test_velocity_count_fires_above_the_maximum_only() -> None:
    at_limit = [conversion("mal", "bean", "sky", 100, at(1 + i * 0.5)) for i in range(20)]
    assert _count("velocity_count", add(clean_day(), conversions=at_limit)) == 0
    over = [*at_limit, conversion("mal", "bean", "sky", 100, at(20))]
    assert _count("velocity_count", add(clean_day(), conversions=over)) == 1


@pytest.mark.parametrize(
    ("amount_in", "fires"), [(100_000, False), (100_001, True)], ids=["at-limit", "above"]
)
def test_velocity_value_threshold(amount_in: int, fires: bool) -> None:
    inputs = add(clean_day(), conversions=[conversion("mal", "bean", "sky", amount_in, at(3))])
    assert _count("velocity_value", inputs) == int(fires)


@pytest.mark.parametrize(
    ("today", "average", "fires"),
    [
        (3_000, 1_000, True),  # exactly +200 %
        (2_999, 1_000, False),
        (300, 99, False),  # below the minimum average: a near-empty balance growing
        (300, 100, True),
    ],
)
def test_spike_threshold(today: int, average: int, fires: bool) -> None:
    history = steady_balances("mal", "sky", average)
    inputs = add(
        clean_day(), balances=[*history, DailyBalance(member("mal"), "sky", DAY.toordinal(), today)]
    )
    assert _count("spike", inputs) == int(fires)


def test_spike_ignores_a_balance_that_did_not_change_today() -> None:
    history = [
        DailyBalance(member("mal"), "sky", DAY.toordinal() - 40, 100),
        DailyBalance(member("mal"), "sky", DAY.toordinal() - 1, 10_000),
    ]
    assert _count("spike", add(clean_day(), balances=history)) == 0


def test_trailing_balances_carry_forward_and_start_at_zero() -> None:
    history = [DailyBalance("m", "b", 10, 5), DailyBalance("m", "b", 12, 7)]
    assert trailing_balances(history, 8, 13) == [0, 0, 5, 5, 7, 7]


@pytest.mark.parametrize(
    ("gap_hours", "fires"), [(24, True), (24.01, False)], ids=["in-window", "after"]
)
def test_round_trip_window(gap_hours: float, fires: bool) -> None:
    there = conversion("mal", "bean", "sky", 1_000, at(-2))
    back = conversion("mal", "sky", "bean", 500, at(-2 + gap_hours))
    assert _count("round_trip", add(clean_day(), conversions=[there, back])) == int(fires)


def test_round_trip_across_midnight_belongs_to_the_second_leg_period() -> None:
    there = conversion("mal", "bean", "sky", 1_000, START - timedelta(hours=3))
    back = conversion("mal", "sky", "bean", 500, at(2))
    (alert,) = RULES["round_trip"](add(clean_day(), conversions=[there, back]), DEFAULTS)
    assert [item.request_id for item in alert.items] == [there.request_id, back.request_id]


def test_rate_change_bunching_ignores_the_unprofitable_direction() -> None:
    inputs = scenario("rate_change_bunching")
    (change,) = inputs.rate_changes
    falling = replace(change, new_rate_units=change.old_rate_units // 2)
    assert _count("rate_change_bunching", replace(inputs, rate_changes=(falling,))) == 0


def test_rate_change_bunching_flags_leaving_a_brand_whose_rate_falls() -> None:
    inputs = scenario("rate_change_bunching")
    (change,) = inputs.rate_changes
    bean_falls = replace(change, brand="bean", new_rate_units=change.old_rate_units // 4)
    (alert,) = RULES["rate_change_bunching"](replace(inputs, rate_changes=(bean_falls,)), DEFAULTS)
    assert alert.subject == "bean"


def test_fan_in_counts_distinct_senders() -> None:
    repeated = [gift("bean", f"s{i % 4}", "mal", 100, at(2 + i)) for i in range(8)]
    assert _count("fan_in", add(clean_day(), gifts=repeated)) == 0


def test_new_account_ignores_conversions_after_the_account_grew_old() -> None:
    inputs = scenario("new_account")
    older = {**inputs.first_seen, member("mal"): START - timedelta(days=7)}
    assert _count("new_account", replace(inputs, first_seen=older)) == 0


@pytest.mark.parametrize(
    ("amount_out", "count", "fires"),
    [(900, 3, True), (899, 3, False), (1_000, 2, False)],
)
def test_structuring_threshold(amount_out: int, count: int, fires: bool) -> None:
    limits = (PairLimit("bean", "sky", 1_000),)
    near = [conversion("mal", "bean", "sky", amount_out * 2, at(1 + i)) for i in range(count)]
    inputs = add(clean_day(), conversions=near, pair_limits=limits)
    assert _count("structuring", inputs) == int(fires)


def test_no_maximum_means_no_structuring() -> None:
    inputs = scenario("structuring")
    unlimited = tuple(replace(limit, max_amount_out_points=0) for limit in inputs.pair_limits)
    assert _count("structuring", replace(inputs, pair_limits=unlimited)) == 0


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLIANCE_FRAUD_VELOCITY_CONVERSIONS_MAX", "2")
    assert FraudSettings().velocity_conversions_max == 2
    alerts = evaluate(clean_day(), FraudSettings())
    assert alerts == []  # every ordinary member converts exactly twice
    monkeypatch.setenv("ALLIANCE_FRAUD_VELOCITY_CONVERSIONS_MAX", "1")
    assert {a.member for a in evaluate(clean_day(), FraudSettings())} == {
        member(who) for who in ORDINARY
    }


BRANDS = ("bean", "sky", "cart")


@st.composite
def conversion_days(draw: st.DrawFn) -> list[Conversion]:
    size = draw(st.integers(min_value=0, max_value=60))
    records = []
    for _ in range(size):
        who = draw(st.sampled_from(("ann", "bob", "mal")))
        from_brand, to_brand = draw(st.permutations(BRANDS))[:2]
        amount = draw(st.integers(min_value=1, max_value=200_000))
        hour = draw(st.floats(min_value=-30, max_value=23.99))
        records.append(conversion(who, from_brand, to_brand, amount * 4, at(hour)))
    return records


@settings(max_examples=60, deadline=None)
@given(records=conversion_days(), seed=st.integers())
def test_alerts_do_not_depend_on_record_order(records: list[Conversion], seed: int) -> None:
    inputs = add(clean_day(), conversions=records)
    shuffled = list(inputs.conversions)
    random.Random(seed).shuffle(shuffled)
    assert evaluate(replace(inputs, conversions=tuple(shuffled)), DEFAULTS) == evaluate(
        inputs, DEFAULTS
    )


@settings(max_examples=60, deadline=None)
@given(records=conversion_days())
def test_velocity_count_fires_exactly_for_members_over_the_limit(records: list[Conversion]) -> None:
    inputs = add(clean_day(), conversions=records)
    counts: dict[str, int] = {}
    for c in inputs.period_conversions():
        counts[c.member] = counts.get(c.member, 0) + 1
    limit = DEFAULTS.velocity_conversions_max
    expected = sorted(who for who, n in counts.items() if n > limit)
    assert sorted(a.member for a in RULES["velocity_count"](inputs, DEFAULTS)) == expected
