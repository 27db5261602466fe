"""`alliance.statements` builds the statements file that is hashed and anchored.

Proves, without a chain: over random conversion days (mints, burns, conversions and gifts
applied to simulated member balances) every brand statement ties out against the simulated
closing supply, the multilateral nets in the file sum to zero, the file's bytes do not
depend on the order events were fed in, and the hash is keccak256 of exactly those bytes;
a statement that does not tie out is named; the CSVs and one brand's extract carry the
same figures.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from decimal import Decimal

from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.money import quote_conversion
from alliance.netting import Conversion
from alliance.statements import (
    FORMAT,
    BrandInfo,
    PeriodActivity,
    PeriodFacts,
    brand_statement,
    build_statements,
    canonical_bytes,
    flows_csv,
    statements_csv,
    statements_hash,
    tie_out_failures,
)

RATES = {"bean": 10**16, "sky": 2 * 10**16, "cart": 5 * 10**15}
TOKENS = {code: "0x" + f"{index + 1:040x}" for index, code in enumerate(sorted(RATES))}
MEMBERS = 4


@dataclass(frozen=True)
class Step:
    """One thing a member does (amounts are a fraction of what they hold, so burns never
    exceed the balance)."""

    kind: str
    member: int
    brand: str
    other: str
    amount: int
    reason: int
    fee_bps: int


steps = st.builds(
    Step,
    st.sampled_from(["mint", "burn", "convert", "gift"]),
    st.integers(0, MEMBERS - 1),
    st.sampled_from(sorted(RATES)),
    st.sampled_from(sorted(RATES)),
    st.integers(1, 10**24),
    st.sampled_from([1, 2, 4, 5]),
    st.integers(0, 500),
)


def simulate(opening: dict[tuple[int, str], int], day: list[Step]) -> tuple[list, dict]:
    """Apply the day to member balances; return the events a chain replay would yield
    and the closing balances."""
    balances = dict(opening)
    events: list[tuple] = []
    for step in day:
        held = balances.get((step.member, step.brand), 0)
        if step.kind == "mint":
            balances[(step.member, step.brand)] = held + step.amount
            events.append(("mint", step.brand, step.reason, step.amount))
        elif step.kind == "burn" and held:
            amount = step.amount % held + 1
            balances[(step.member, step.brand)] = held - amount
            events.append(("burn", step.brand, step.reason, amount))
        elif step.kind == "gift" and held:
            amount = step.amount % held + 1
            receiver = (step.member + 1) % MEMBERS
            balances[(step.member, step.brand)] = held - amount
            balances[(receiver, step.brand)] = balances.get((receiver, step.brand), 0) + amount
            events.append(("gift", step.brand, amount))
        elif step.kind == "convert" and held and step.brand != step.other:
            amount = step.amount % held + 1
            quote = quote_conversion(amount, RATES[step.brand], RATES[step.other], step.fee_bps)
            balances[(step.member, step.brand)] = held - amount
            key = (step.member, step.other)
            balances[key] = balances.get(key, 0) + quote.amount_out_points
            conversion = Conversion(
                step.brand,
                step.other,
                amount,
                quote.amount_out_points,
                quote.fee_points,
                quote.value_in_units,
                RATES[step.other],
            )
            events.append(("convert", conversion))
    return events, balances


def supplies(balances: dict[tuple[int, str], int]) -> dict[str, int]:
    totals = dict.fromkeys(RATES, 0)
    for (_, brand), amount in balances.items():
        totals[brand] += amount
    return totals


def activity_of(events: list[tuple]) -> PeriodActivity:
    activity = PeriodActivity()
    for event in events:
        if event[0] == "mint":
            activity.add_mint(*event[1:])
        elif event[0] == "burn":
            activity.add_burn(*event[1:])
        elif event[0] == "gift":
            activity.add_gift(*event[1:])
        else:
            activity.add_conversion(event[1])
    return activity


def facts(opening: dict[str, int], closing: dict[str, int], **extra: object) -> PeriodFacts:
    return PeriodFacts(
        period_id=20261122,
        time_zone="Europe/Paris",
        opening_block=101,
        closing_block=250,
        balances_root=bytes(range(32)),
        peg=Decimal("1.25"),
        currency="EUR",
        brands=[BrandInfo(code, token) for code, token in TOKENS.items()],
        opening_supply=opening,
        closing_supply=closing,
        **extra,  # type: ignore[arg-type]
    )


openings = st.dictionaries(
    st.tuples(st.integers(0, MEMBERS - 1), st.sampled_from(sorted(RATES))),
    st.integers(0, 10**24),
)


@settings(max_examples=150, deadline=None)
@given(openings, st.lists(steps, max_size=40), st.randoms(use_true_random=False))
def test_random_days_tie_out_and_hash_the_same_whatever_the_event_order(
    opening: dict[tuple[int, str], int], day: list[Step], shuffler: random.Random
) -> None:
    events, closing = simulate(opening, day)
    period = facts(supplies(opening), supplies(closing))
    document = build_statements(period, activity_of(events))
    assert tie_out_failures(document) == []
    assert sum(int(b["multilateral_net_units"]) for b in document["brands"]) == 0
    value_out = sum(int(b["value_out_units"]) for b in document["brands"])
    assert value_out == sum(int(f["value_units"]) for f in document["flows"])
    data = canonical_bytes(document)
    shuffler.shuffle(events)
    assert canonical_bytes(build_statements(period, activity_of(events))) == data
    assert statements_hash(data) == keccak(data)
    assert json.loads(data) == document


def test_a_statement_that_does_not_tie_out_is_named() -> None:
    activity = PeriodActivity()
    activity.add_mint("bean", 1, 100)
    opening = dict.fromkeys(RATES, 0)
    closing = opening | {"bean": 99}
    document = build_statements(facts(opening, closing), activity)
    assert tie_out_failures(document) == ["bean: expected 100, closing 99"]


def test_the_document_carries_reports_counts_and_reason_names() -> None:
    activity = PeriodActivity()
    activity.add_mint("sky", 1, 300)
    activity.add_mint("sky", 5, 7)
    activity.add_burn("sky", 4, 10)
    activity.add_conversion(Conversion("sky", "bean", 100, 195, 5, 2 * 10**18, 10**16))
    opening = dict.fromkeys(RATES, 0)
    closing = opening | {"sky": 197, "bean": 195}
    period = facts(
        opening,
        closing,
        reported_liability={"sky": 197},
        discrepancies={"bean": 2},
        alerts={"sky": 1},
    )
    document = build_statements(period, activity)
    assert document["format"] == FORMAT
    assert document["peg"] == "1.25"
    assert document["bilateral"] == [
        {"payer": "sky", "payee": "bean", "value_units": str(2 * 10**18), "currency": "2.5"}
    ]
    brands = {b["brand"]: b for b in document["brands"]}
    assert brands["sky"]["minted"] == {"correction": "7", "deposit": "300"}
    assert brands["sky"]["burned"] == {"expiry": "10"}
    assert brands["sky"]["reported_liability"] == "197"
    assert brands["cart"]["reported_liability"] is None
    assert brands["bean"]["fees_earned_units"] == str(5 * 10**16)
    assert brands["bean"]["multilateral_net_currency"] == "2.5"
    assert brands["sky"]["multilateral_net_currency"] == "-2.5"
    assert (brands["bean"]["discrepancies"], brands["sky"]["alerts"]) == (2, 1)
    assert tie_out_failures(document) == []

    extract = brand_statement(document, "bean")
    assert extract["brand"] == brands["bean"]
    assert [f["from"] for f in extract["flows"]] == ["sky"]
    assert brand_statement(document, "cart")["flows"] == []

    rows = statements_csv(document["brands"]).splitlines()
    assert rows[0].startswith("brand,token,opening_supply,minted,burned")
    assert "correction=7;deposit=300" in rows[3]
    assert flows_csv(document["flows"]).splitlines()[1].startswith("sky,bean,1,100,195,5,")
