"""From decoded chain events to the records the fraud rules read. Pure.

One pass over the alliance's events from the deployment block to the period's closing
block: `Converted` and `Gifted` become conversions and gifts; `Transfer`s replay every
balance, the daily closing balances of the spike window's holdings that moved on the
period's day and before it, and each member's first appearance; `BrandListed`,
`RateScheduled` and `RateCancelled` give scheduled rate changes with the rate each
replaces; `PairPolicySet` gives each pair's current maximum.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from sys import intern

from alliance.events import ChainEvent, canonical_address
from settlement.fraud.records import (
    Conversion,
    DailyBalance,
    FraudInputs,
    Gift,
    PairLimit,
    Period,
    RateChange,
)
from settlement.fraud.settings import FraudSettings

ZERO_ADDRESS = "0x" + "00" * 20

EVENT_NAMES = (
    "Transfer",
    "Converted",
    "Gifted",
    "BrandListed",
    "RateScheduled",
    "RateCancelled",
    "PairPolicySet",
)
"""What `fraud_inputs` reads."""

_RECENT_ONLY = frozenset({"Converted", "Gifted"})
"""Events kept only from the round-trip window before the period on."""


@dataclass
class _Replay:
    """State gathered while walking the events."""

    balances: dict[tuple[str, str], int] = field(default_factory=dict)
    history: dict[tuple[str, str], dict[int, int]] = field(default_factory=dict)
    """(member, brand) → day → closing balance, for the window's days before the period's
    day on which the holding moved."""
    moved_again: set[tuple[str, str]] = field(default_factory=set)
    """Holdings of `history` that moved on the period's day too: the spike candidates."""
    first_seen: dict[str, datetime] = field(default_factory=dict)
    conversions: list[Conversion] = field(default_factory=list)
    gifts: list[Gift] = field(default_factory=list)
    listed: dict[str, tuple[datetime, int]] = field(default_factory=dict)
    scheduled: dict[tuple[str, int], tuple[int, datetime]] = field(default_factory=dict)
    maxima: dict[tuple[str, str], int] = field(default_factory=dict)


class FraudReplay:
    """`fraud_inputs` one event at a time, so one pass over the events can feed it and the
    expiry lots together (`settlement.risk`)."""

    def __init__(
        self,
        token_brand: Mapping[str, str],
        period: Period,
        zone: tzinfo,
        settings: FraudSettings,
    ) -> None:
        self.token_brand = token_brand
        self.period = period
        self.zone = zone
        self.state = _Replay()
        self.day = period.start.astimezone(zone).date().toordinal()
        self.first_day = self.day - settings.spike_window_days
        self.lookback = period.start - timedelta(seconds=settings.round_trip_window_s)
        self._block = -1
        self._local_day = 0

    def add(self, event: ChainEvent, at: datetime) -> None:
        """The next event in chain order, mined at `at`."""
        if event.name == "Transfer":
            a = event.args
            sender, recipient = canonical_address(a["from"]), canonical_address(a["to"])
            token = event.address.lower()
            self.add_transfer(token, sender, recipient, int(a["value"]), event.block_number, at)
            return
        if event.name in _RECENT_ONLY and at < self.lookback:
            return  # older movements matter only through balances (streamed, not kept)
        handler = _HANDLERS.get(event.name)
        if handler is not None:
            handler(self.state, event, at, self.token_brand)

    def add_transfer(
        self, token: str, sender: str, recipient: str, amount: int, block_number: int, at: datetime
    ) -> None:
        """The next `Transfer` (the fast path of `add`: a busy day has millions); the token
        lower-case, the accounts as `canonical_address` gives them."""
        brand = self.token_brand.get(token)
        if brand is None:
            return
        if block_number != self._block:
            # A block's events share its time: its local day is worked out once.
            self._block = block_number
            self._local_day = at.astimezone(self.zone).date().toordinal()
        state, on = self.state, self._local_day
        for account, change in ((sender, -amount), (recipient, amount)):
            if account == ZERO_ADDRESS:
                continue
            state.first_seen.setdefault(account, at)
            balance = state.balances.get((account, brand), 0) + change
            assert balance >= 0, f"negative balance for {account} at {brand}"
            state.balances[(account, brand)] = balance
            if on == self.day:
                if (account, brand) in state.history:
                    state.moved_again.add((account, brand))
            elif on >= self.first_day:
                state.history.setdefault((account, brand), {})[on] = balance

    def _spike_histories(self) -> tuple[DailyBalance, ...]:
        """The daily balances of the holdings that moved on the period's day and on an
        earlier day of the window, in (member, brand, day) order: the spike rule passes
        over every other holding (unchanged today, or new today), and a busy day has
        millions of them. The day's own closing balance is the replayed balance."""
        state = self.state
        records = []
        for key in sorted(state.moved_again):
            member, brand = key
            for on, points in sorted(state.history[key].items()):
                records.append(DailyBalance(member, brand, on, points))
            records.append(DailyBalance(member, brand, self.day, state.balances[key]))
        return tuple(records)

    def inputs(self) -> FraudInputs:
        """The rules' records, once every event up to the closing block was added."""
        replay, period, lookback = self.state, self.period, self.lookback
        return FraudInputs(
            period=period,
            day=self.day,
            conversions=tuple(c for c in replay.conversions if lookback <= c.at < period.end),
            gifts=tuple(g for g in replay.gifts if period.contains(g.at)),
            balances=self._spike_histories(),
            first_seen=replay.first_seen,
            rate_changes=_rate_changes(replay, period),
            pair_limits=tuple(
                PairLimit(from_brand, to_brand, maximum)
                for (from_brand, to_brand), maximum in sorted(replay.maxima.items())
            ),
        )


def fraud_inputs(
    events: Iterable[ChainEvent],
    times: Mapping[int, datetime],
    token_brand: Mapping[str, str],
    period: Period,
    zone: tzinfo,
    settings: FraudSettings,
) -> FraudInputs:
    """The rules' records for `period` from the events up to its closing block, in chain
    order. `token_brand` maps token addresses (lower-case) to brand codes; `zone` is the
    alliance's time zone (a balance's day is its local date)."""
    replay = FraudReplay(token_brand, period, zone, settings)
    for event in events:
        replay.add(event, times[event.block_number])
    return replay.inputs()


def _converted(
    replay: _Replay, event: ChainEvent, at: datetime, token_brand: Mapping[str, str]
) -> None:
    a = event.args
    replay.conversions.append(
        Conversion(
            request_id=int(a["requestId"]),
            tx_hash=intern(event.transaction_hash),
            member=canonical_address(a["member"]),
            from_brand=token_brand[a["fromToken"].lower()],
            to_brand=token_brand[a["toToken"].lower()],
            amount_in_points=int(a["amountIn"]),
            amount_out_points=int(a["amountOut"]),
            value_units=int(a["valueIn"]),
            at=at,
        )
    )


def _gifted(
    replay: _Replay, event: ChainEvent, at: datetime, token_brand: Mapping[str, str]
) -> None:
    a = event.args
    replay.gifts.append(
        Gift(
            request_id=int(a["requestId"]),
            tx_hash=intern(event.transaction_hash),
            brand=token_brand[a["token"].lower()],
            sender=a["from"].lower(),
            recipient=a["to"].lower(),
            amount_points=int(a["amount"]),
            at=at,
        )
    )


def _listed(
    replay: _Replay, event: ChainEvent, at: datetime, token_brand: Mapping[str, str]
) -> None:
    brand = token_brand[event.args["token"].lower()]
    replay.listed[brand] = (at, int(event.args["rateValueUnits"]))


def _scheduled(
    replay: _Replay, event: ChainEvent, at: datetime, token_brand: Mapping[str, str]
) -> None:
    a = event.args
    brand = token_brand[a["token"].lower()]
    effective_at = datetime.fromtimestamp(int(a["effectiveAt"]), at.tzinfo)
    replay.scheduled[(brand, int(a["version"]))] = (int(a["rateValueUnits"]), effective_at)


def _cancelled(
    replay: _Replay, event: ChainEvent, at: datetime, token_brand: Mapping[str, str]
) -> None:
    brand = token_brand[event.args["token"].lower()]
    replay.scheduled.pop((brand, int(event.args["version"])), None)


def _pair_policy(
    replay: _Replay, event: ChainEvent, at: datetime, token_brand: Mapping[str, str]
) -> None:
    a = event.args
    pair = (token_brand[a["fromToken"].lower()], token_brand[a["toToken"].lower()])
    replay.maxima[pair] = int(a["maxAmountOut"]) if a["enabled"] else 0


_HANDLERS = {
    "Converted": _converted,
    "Gifted": _gifted,
    "BrandListed": _listed,
    "RateScheduled": _scheduled,
    "RateCancelled": _cancelled,
    "PairPolicySet": _pair_policy,
}


def _rate_changes(replay: _Replay, period: Period) -> tuple[RateChange, ...]:
    """Scheduled (not cancelled) rates taking effect after the period starts, each with the
    rate in force just before it."""
    changes = []
    for (brand, _), (rate, effective_at) in sorted(replay.scheduled.items()):
        if effective_at <= period.start or brand not in replay.listed:
            continue
        history = [replay.listed[brand]] + [
            (when, value)
            for (other, _), (value, when) in replay.scheduled.items()
            if other == brand and when < effective_at
        ]
        _, old_rate = max(history, key=lambda entry: entry[0])
        changes.append(RateChange(brand, old_rate, rate, effective_at))
    return tuple(changes)
