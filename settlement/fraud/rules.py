"""The fraud rules: pure functions from a period's records to alerts.

Each rule groups the period's movements by member (and brand or pair), compares one figure
with one threshold of `FraudSettings`, and returns at most one alert per group, carrying the
movements that made it fire. `evaluate` runs them all and orders the alerts by key, so the
same records always give the same alerts in the same order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import timedelta

from settlement.fraud.records import (
    VALUE_SCALE,
    Alert,
    Conversion,
    DailyBalance,
    EvidenceItem,
    FraudInputs,
    Gift,
    Severity,
    conversion_item,
    gift_item,
)
from settlement.fraud.settings import FraudSettings

Rule = Callable[[FraudInputs, FraudSettings], list[Alert]]

ALL_BRANDS = "*"
"""Subject of an alert about a member's movements across every brand."""


def _by_member(conversions: Iterable[Conversion]) -> dict[str, list[Conversion]]:
    grouped: dict[str, list[Conversion]] = defaultdict(list)
    for conversion in conversions:
        grouped[conversion.member].append(conversion)
    return grouped


def _brands(conversions: Iterable[Conversion]) -> tuple[str, ...]:
    return tuple(sorted({b for c in conversions for b in (c.from_brand, c.to_brand)}))


def _value(conversions: Iterable[Conversion]) -> int:
    return sum(c.value_units for c in conversions)


def _items(conversions: Iterable[Conversion]) -> tuple[EvidenceItem, ...]:
    ordered = sorted(conversions, key=lambda c: (c.at, c.request_id))
    return tuple(conversion_item(c) for c in ordered)


def velocity_count(inputs: FraudInputs, settings: FraudSettings) -> list[Alert]:
    """More conversions by one member in the period than `velocity_conversions_max`."""
    alerts = []
    for member, conversions in inputs.period_conversions_by_member().items():
        if len(conversions) <= settings.velocity_conversions_max:
            continue
        alerts.append(
            Alert(
                rule="velocity_count",
                severity=Severity.MEDIUM,
                period_id=inputs.period.period_id,
                member=member,
                brands=_brands(conversions),
                subject=ALL_BRANDS,
                summary=f"{len(conversions)} conversions in the period",
                figures={
                    "conversions": str(len(conversions)),
                    "threshold": str(settings.velocity_conversions_max),
                },
                items=_items(conversions),
            )
        )
    return alerts


def velocity_value(inputs: FraudInputs, settings: FraudSettings) -> list[Alert]:
    """More value converted by one member in the period than `velocity_value_max_units`."""
    limit = settings.velocity_value_max_units * VALUE_SCALE
    alerts = []
    for member, conversions in inputs.period_conversions_by_member().items():
        total = _value(conversions)
        if total <= limit:
            continue
        alerts.append(
            Alert(
                rule="velocity_value",
                severity=Severity.HIGH,
                period_id=inputs.period.period_id,
                member=member,
                brands=_brands(conversions),
                subject=ALL_BRANDS,
                summary=f"{total // VALUE_SCALE} value units converted in the period",
                figures={"value_units": str(total), "threshold_units": str(limit)},
                items=_items(conversions),
            )
        )
    return alerts


def trailing_balances(history: list[DailyBalance], first_day: int, last_day: int) -> list[int]:
    """Closing balances for each day of `[first_day, last_day]`, carrying the last known
    balance forward (0 before the first record). `history` is sorted by day."""
    balances = []
    index, current = 0, 0
    for day in range(first_day, last_day + 1):
        while index < len(history) and history[index].day <= day:
            current = history[index].balance_points
            index += 1
        balances.append(current)
    return balances


def spike(inputs: FraudInputs, settings: FraudSettings) -> list[Alert]:
    """A closing balance at least `spike_increase_pct` above its trailing average over
    `spike_window_days` (exact integer comparison: no division)."""
    histories: dict[tuple[str, str], list[DailyBalance]] = defaultdict(list)
    for record in sorted(inputs.balances, key=lambda b: b.day):
        histories[(record.member, record.brand)].append(record)
    window = settings.spike_window_days
    alerts = []
    for (member, brand), history in sorted(histories.items()):
        if history[-1].day != inputs.day:
            continue  # unchanged today: no jump
        if history[0].day == inputs.day:
            # No balance before today: a trailing average of zero, below any minimum (at
            # least 1 point), so the day's new holdings skip the window's walk.
            continue
        today = [r for r in history if r.day == inputs.day]
        trailing = sum(trailing_balances(history, inputs.day - window, inputs.day - 1))
        balance = today[-1].balance_points
        if trailing < settings.spike_average_min_points * window:
            continue
        if balance * 100 * window < trailing * (100 + settings.spike_increase_pct):
            continue
        alerts.append(_spike_alert(inputs, settings, member, brand, balance, trailing))
    return alerts


def _spike_alert(
    inputs: FraudInputs,
    settings: FraudSettings,
    member: str,
    brand: str,
    balance: int,
    trailing_sum: int,
) -> Alert:
    window = settings.spike_window_days
    average = trailing_sum // window
    item = EvidenceItem(
        kind="balance",
        request_id=None,
        tx_hash=None,
        amount_points=balance,
        value_units=None,
        at=inputs.period.end,
        brands=(brand,),
    )
    return Alert(
        rule="spike",
        severity=Severity.MEDIUM,
        period_id=inputs.period.period_id,
        member=member,
        brands=(brand,),
        subject=brand,
        summary=f"balance {balance} against a {window}-day average of {average}",
        figures={
            "balance_points": str(balance),
            "trailing_average_points": str(average),
            "increase_threshold_pct": str(settings.spike_increase_pct),
        },
        items=(item,),
    )


def round_trip(inputs: FraudInputs, settings: FraudSettings) -> list[Alert]:
    """A conversion A→B in the period preceded by B→A within `round_trip_window_s`."""
    window = timedelta(seconds=settings.round_trip_window_s)
    found: dict[tuple[str, str], set[Conversion]] = defaultdict(set)
    for member, conversions in _by_member(inputs.conversions).items():
        if len(conversions) < 2:
            continue  # a round trip takes two legs
        ordered = sorted(conversions, key=lambda c: (c.at, c.request_id))
        for later_index, later in enumerate(ordered):
            if not inputs.period.contains(later.at):
                continue
            for earlier in ordered[:later_index]:
                back = (earlier.from_brand, earlier.to_brand) == (later.to_brand, later.from_brand)
                if back and later.at - earlier.at <= window:
                    pair = "<>".join(sorted((later.from_brand, later.to_brand)))
                    found[(member, pair)] |= {earlier, later}
    return [
        Alert(
            rule="round_trip",
            severity=Severity.MEDIUM,
            period_id=inputs.period.period_id,
            member=member,
            brands=_brands(legs),
            subject=pair,
            summary=f"points converted there and back ({pair}) within the window",
            figures={"legs": str(len(legs)), "window_s": str(settings.round_trip_window_s)},
            items=_items(legs),
        )
        for (member, pair), legs in sorted(found.items())
    ]


def rate_change_bunching(inputs: FraudInputs, settings: FraudSettings) -> list[Alert]:
    """Value a member converts, in the profitable direction, within `rate_change_window_s`
    before a scheduled rate change: out of a brand whose rate will fall, or into one whose
    rate will rise. Fires at `rate_change_value_min_units` per member and changing brand."""
    window = timedelta(seconds=settings.rate_change_window_s)
    ahead: dict[tuple[str, str], list[Conversion]] = defaultdict(list)
    for conversion in inputs.period_conversions():
        for change in inputs.rate_changes:
            lead = change.effective_at - conversion.at
            if not timedelta(0) < lead <= window:
                continue
            falls_out = change.brand == conversion.from_brand
            rises_in = change.brand == conversion.to_brand
            if (falls_out and change.new_rate_units < change.old_rate_units) or (
                rises_in and change.new_rate_units > change.old_rate_units
            ):
                ahead[(conversion.member, change.brand)].append(conversion)
    limit = settings.rate_change_value_min_units * VALUE_SCALE
    return [
        Alert(
            rule="rate_change_bunching",
            severity=Severity.MEDIUM,
            period_id=inputs.period.period_id,
            member=member,
            brands=_brands(conversions),
            subject=brand,
            summary=f"value converted just before {brand}'s scheduled rate change",
            figures={"value_units": str(_value(conversions)), "threshold_units": str(limit)},
            items=_items(conversions),
        )
        for (member, brand), conversions in sorted(ahead.items())
        if _value(conversions) >= limit
    ]


def fan_in(inputs: FraudInputs, settings: FraudSettings) -> list[Alert]:
    """At least `fan_in_senders_min` distinct members gifting into one member at one brand."""
    received: dict[tuple[str, str], list[Gift]] = defaultdict(list)
    for gift in inputs.period_gifts():
        received[(gift.recipient, gift.brand)].append(gift)
    alerts = []
    for (member, brand), gifts in sorted(received.items()):
        ordered = sorted(gifts, key=lambda g: (g.at, g.request_id))
        senders = {g.sender for g in ordered}
        if len(senders) < settings.fan_in_senders_min:
            continue
        alerts.append(
            Alert(
                rule="fan_in",
                severity=Severity.HIGH,
                period_id=inputs.period.period_id,
                member=member,
                brands=(brand,),
                subject=brand,
                summary=f"gifts from {len(senders)} different members",
                figures={
                    "senders": str(len(senders)),
                    "threshold": str(settings.fan_in_senders_min),
                },
                items=tuple(gift_item(g) for g in ordered),
            )
        )
    return alerts


def new_account(inputs: FraudInputs, settings: FraudSettings) -> list[Alert]:
    """An account first seen less than `new_account_age_max_s` before its conversions,
    converting at least `new_account_value_min_units` of value while new."""
    age_max = timedelta(seconds=settings.new_account_age_max_s)
    limit = settings.new_account_value_min_units * VALUE_SCALE
    alerts = []
    for member, conversions in sorted(inputs.period_conversions_by_member().items()):
        first_seen = inputs.first_seen.get(member)
        if first_seen is None:
            continue
        young = [c for c in conversions if c.at - first_seen < age_max]
        if not young or _value(young) < limit:
            continue
        alerts.append(
            Alert(
                rule="new_account",
                severity=Severity.MEDIUM,
                period_id=inputs.period.period_id,
                member=member,
                brands=_brands(young),
                subject=ALL_BRANDS,
                summary=f"account first seen {first_seen.isoformat()} converting large amounts",
                figures={
                    "value_units": str(_value(young)),
                    "threshold_units": str(limit),
                    "first_seen": first_seen.isoformat(),
                },
                items=_items(young),
            )
        )
    return alerts


def structuring(inputs: FraudInputs, settings: FraudSettings) -> list[Alert]:
    """At least `structuring_count_min` conversions of one member on one pair whose amount
    out is within `structuring_ratio_pct` of the pair's maximum."""
    maxima = {(p.from_brand, p.to_brand): p.max_amount_out_points for p in inputs.pair_limits}
    near: dict[tuple[str, str, str], list[Conversion]] = defaultdict(list)
    for conversion in inputs.period_conversions():
        maximum = maxima.get((conversion.from_brand, conversion.to_brand), 0)
        threshold = maximum * settings.structuring_ratio_pct
        if maximum and conversion.amount_out_points * 100 >= threshold:
            near[(conversion.member, conversion.from_brand, conversion.to_brand)].append(conversion)
    return [
        Alert(
            rule="structuring",
            severity=Severity.MEDIUM,
            period_id=inputs.period.period_id,
            member=member,
            brands=(from_brand, to_brand),
            subject=f"{from_brand}>{to_brand}",
            summary=f"{len(conversions)} conversions just under the pair's maximum",
            figures={
                "conversions": str(len(conversions)),
                "max_amount_out_points": str(maxima[(from_brand, to_brand)]),
                "ratio_pct": str(settings.structuring_ratio_pct),
            },
            items=_items(conversions),
        )
        for (member, from_brand, to_brand), conversions in sorted(near.items())
        if len(conversions) >= settings.structuring_count_min
    ]


RULES: dict[str, Rule] = {
    "velocity_count": velocity_count,
    "velocity_value": velocity_value,
    "spike": spike,
    "round_trip": round_trip,
    "rate_change_bunching": rate_change_bunching,
    "fan_in": fan_in,
    "new_account": new_account,
    "structuring": structuring,
}
"""Every rule by name (the name is the alert's `rule`)."""


def evaluate(inputs: FraudInputs, settings: FraudSettings) -> list[Alert]:
    """Every rule's alerts for the period, ordered by natural key."""
    alerts = [alert for rule in RULES.values() for alert in rule(inputs, settings)]
    keys = [alert.key for alert in alerts]
    assert len(set(keys)) == len(keys), "two alerts share a natural key"
    return sorted(alerts, key=lambda alert: alert.key)
