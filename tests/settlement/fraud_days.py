"""Records for fraud-rule tests: a clean day among ordinary members, and one scenario per
rule that adds exactly what should make that rule (and no other) fire.

Rates follow config/alliance.yaml: bean 100 points per unit, sky 50, cart 200; conversions
here carry no fee, so `amount_out = floor(value / rate_to)`.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from settlement.fraud.records import (
    VALUE_SCALE,
    Conversion,
    DailyBalance,
    FraudInputs,
    Gift,
    PairLimit,
    Period,
    RateChange,
)

DAY = date(2026, 11, 22)
START = datetime(2026, 11, 22, tzinfo=UTC)
PERIOD = Period(20261122, START, START + timedelta(days=1))
RATES = {"bean": VALUE_SCALE // 100, "sky": VALUE_SCALE // 50, "cart": VALUE_SCALE // 200}
LONG_AGO = START - timedelta(days=400)

_ids = itertools.count(1)


def member(name: str) -> str:
    """A pseudonymous address for a test member."""
    return "0x" + name.encode().hex().rjust(40, "0")


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def conversion(
    who: str, from_brand: str, to_brand: str, amount_in: int, when: datetime
) -> Conversion:
    request_id = next(_ids)
    value = amount_in * RATES[from_brand]
    return Conversion(
        request_id=request_id,
        tx_hash="0x" + f"{request_id:064x}",
        member=member(who),
        from_brand=from_brand,
        to_brand=to_brand,
        amount_in_points=amount_in,
        amount_out_points=value // RATES[to_brand],
        value_units=value,
        at=when,
    )


def gift(brand: str, sender: str, recipient: str, amount: int, when: datetime) -> Gift:
    request_id = next(_ids)
    return Gift(
        request_id,
        "0x" + f"{request_id:064x}",
        brand,
        member(sender),
        member(recipient),
        amount,
        when,
    )


def steady_balances(who: str, brand: str, points: int) -> list[DailyBalance]:
    """A balance set long ago and unchanged since."""
    return [DailyBalance(member(who), brand, DAY.toordinal() - 90, points)]


ORDINARY = ("ann", "bob", "cat", "dan", "eve")


def clean_day() -> FraudInputs:
    """Ordinary members: a few small conversions each way, a gift, steady balances, old
    accounts, pair maxima well above what they convert."""
    conversions = []
    for index, who in enumerate(ORDINARY):
        conversions.append(conversion(who, "bean", "sky", 500 + 100 * index, at(8 + index)))
        conversions.append(conversion(who, "cart", "bean", 4_000, at(12 + index)))
    gifts = [gift("bean", "ann", "bob", 50, at(9)), gift("cart", "cat", "dan", 70, at(15))]
    balances = [b for who in ORDINARY for b in steady_balances(who, "bean", 5_000)]
    # A balance that moved today, but only a little: no spike.
    balances.append(DailyBalance(member("ann"), "bean", DAY.toordinal(), 5_400))
    return FraudInputs(
        period=PERIOD,
        day=DAY.toordinal(),
        conversions=tuple(conversions),
        gifts=tuple(gifts),
        balances=tuple(balances),
        first_seen={member(who): LONG_AGO for who in (*ORDINARY, "mal")},
        rate_changes=(),
        pair_limits=(
            PairLimit("bean", "sky", 1_000_000),
            PairLimit("cart", "bean", 1_000_000),
            PairLimit("sky", "bean", 1_000_000),
        ),
    )


def add(
    base: FraudInputs,
    conversions: list[Conversion] | None = None,
    gifts: list[Gift] | None = None,
    balances: list[DailyBalance] | None = None,
    **changes: object,
) -> FraudInputs:
    """`base` with more records (and any field replaced)."""
    return replace(
        base,
        conversions=base.conversions + tuple(conversions or ()),
        gifts=base.gifts + tuple(gifts or ()),
        balances=base.balances + tuple(balances or ()),
        **changes,  # type: ignore[arg-type]
    )


def scenario(rule: str) -> FraudInputs:
    """The clean day plus the member `mal` doing what `rule` looks for."""
    base = clean_day()
    if rule == "velocity_count":
        many = [conversion("mal", "bean", "sky", 100, at(1 + i * 0.5)) for i in range(21)]
        return add(base, conversions=many)
    if rule == "velocity_value":
        return add(base, conversions=[conversion("mal", "bean", "sky", 150_000, at(10))])
    if rule == "spike":
        history = steady_balances("mal", "sky", 1_000)
        today = DailyBalance(member("mal"), "sky", DAY.toordinal(), 3_000)
        return add(base, balances=[*history, today])
    if rule == "round_trip":
        there = conversion("mal", "bean", "sky", 1_000, at(10))
        back = conversion("mal", "sky", "bean", 500, at(14))
        return add(base, conversions=[there, back])
    if rule == "rate_change_bunching":
        rise = RateChange("sky", RATES["sky"], RATES["sky"] * 2, START + timedelta(hours=36))
        ahead = conversion("mal", "bean", "sky", 25_000, at(20))
        return add(base, conversions=[ahead], rate_changes=(rise,))
    if rule == "fan_in":
        ring = [gift("bean", f"s{i}", "mal", 100, at(2 + i)) for i in range(5)]
        return add(base, gifts=ring)
    if rule == "new_account":
        fresh = {**base.first_seen, member("mal"): START - timedelta(days=2)}
        large = conversion("mal", "bean", "sky", 15_000, at(11))
        return add(base, conversions=[large], first_seen=fresh)
    if rule == "structuring":
        limits = (PairLimit("bean", "sky", 1_000), *base.pair_limits[1:])
        near = [conversion("mal", "bean", "sky", 1_900, at(3 + i)) for i in range(3)]
        return add(base, conversions=near, pair_limits=limits)
    raise AssertionError(f"no scenario for {rule}")
