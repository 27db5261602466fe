"""Lots consumed first in, first out, and which of them expire (settlement/lots.py). Pure.

Proves, against a point-by-point model (each point a dated token in a queue): the lots never
give more than was held and always hold exactly credits minus debits; partly consumed lots
are always the oldest; expired points under a fixed term are exactly the unconsumed points
older than the term; a rolling term expires everything after the last movement's term; and
the calendar arithmetic of terms (month ends).
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.lots import (
    ExpiryPolicy,
    Holding,
    Movement,
    add_months,
    build_holdings,
    burns,
    expired_lots,
    expiring_lots,
)

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
FIXED = ExpiryPolicy("fixed", 24)


@st.composite
def histories(draw: st.DrawFn) -> list[Movement]:
    """A member's movements at one brand over about four years; debits never exceed the
    balance (the chain refuses them)."""
    moves = []
    balance, day = 0, 0
    for index in range(draw(st.integers(min_value=0, max_value=40))):
        day += draw(st.integers(min_value=0, max_value=90))
        credit = balance == 0 or draw(st.booleans())
        amount = draw(st.integers(min_value=1, max_value=1_000)) if credit else None
        if amount is None:
            amount = draw(st.integers(min_value=1, max_value=balance))
        balance += amount if credit else -amount
        at = EPOCH + timedelta(days=day)
        moves.append(Movement("0xm", "bean", amount, credit, at, (index + 1, 0)))
    return moves


def point_model(moves: list[Movement]) -> deque[datetime]:
    """Each held point as its arrival time, oldest first."""
    points: deque[datetime] = deque()
    for move in moves:
        if move.credit:
            points.extend([move.at] * move.amount_points)
        else:
            for _ in range(move.amount_points):
                points.popleft()
    return points


@settings(max_examples=200, deadline=None)
@given(moves=histories())
def test_lots_hold_exactly_what_the_point_model_holds(moves: list[Movement]) -> None:
    holding = build_holdings(moves).get(("0xm", "bean"), Holding())
    credits = sum(m.amount_points for m in moves if m.credit)
    debits = sum(m.amount_points for m in moves if not m.credit)
    assert holding.held_points == credits - debits
    assert all(0 < lot.remaining_points <= lot.amount_points for lot in holding.lots)
    # First in, first out: only the oldest remaining lot may be partly consumed.
    assert all(lot.remaining_points == lot.amount_points for lot in holding.lots[1:])
    expanded = [lot.opened_at for lot in holding.lots for _ in range(lot.remaining_points)]
    assert expanded == list(point_model(moves))


@settings(max_examples=200, deadline=None)
@given(moves=histories(), months=st.integers(min_value=1, max_value=36), days=st.integers(0, 1500))
def test_fixed_term_expires_exactly_the_unconsumed_points_past_their_term(
    moves: list[Movement], months: int, days: int
) -> None:
    now = EPOCH + timedelta(days=days)
    past = [m for m in moves if m.at <= now]
    holdings = build_holdings(past)
    policy = ExpiryPolicy("fixed", months)
    expired = expired_lots(holdings, {"bean": policy}, now)
    model = [at for at in point_model(past) if add_months(at, months) <= now]
    assert sum(lot.amount_points for lot in expired) == len(model)
    assert sum(b.amount_points for b in burns(expired)) == len(model)


@settings(max_examples=100, deadline=None)
@given(moves=histories(), days=st.integers(0, 1500))
def test_burning_what_expired_leaves_nothing_expired(moves: list[Movement], days: int) -> None:
    now = EPOCH + timedelta(days=days)
    past = [m for m in moves if m.at <= now]
    expired = expired_lots(build_holdings(past), {"bean": FIXED}, now)
    burned = [
        Movement(b.member, b.brand, b.amount_points, False, now, (10_000, i))
        for i, b in enumerate(burns(expired))
    ]
    after = build_holdings([*past, *burned])
    assert expired_lots(after, {"bean": FIXED}, now) == []


def test_rolling_term_expires_everything_after_the_last_movement() -> None:
    moves = [
        Movement("0xm", "bean", 100, True, EPOCH, (1, 0)),
        Movement("0xm", "bean", 50, True, add_months(EPOCH, 10), (2, 0)),
        Movement("0xm", "bean", 30, False, add_months(EPOCH, 11), (3, 0)),
    ]
    holdings = build_holdings(moves)
    rolling = {"bean": ExpiryPolicy("rolling", 12)}
    term_end = add_months(EPOCH, 23)
    assert expired_lots(holdings, rolling, term_end - timedelta(seconds=1)) == []
    expired = expired_lots(holdings, rolling, term_end)
    assert [(lot.lot_key, lot.amount_points) for lot in expired] == [("1:0", 70), ("2:0", 50)]


def test_brands_without_a_policy_never_expire() -> None:
    holdings = build_holdings([Movement("0xm", "sky", 100, True, EPOCH, (1, 0))])
    assert expired_lots(holdings, {"bean": FIXED}, add_months(EPOCH, 600)) == []


def test_expiring_lots_are_those_due_within_the_horizon() -> None:
    moves = [
        Movement("0xm", "bean", 100, True, EPOCH, (1, 0)),
        Movement("0xm", "bean", 60, True, EPOCH + timedelta(days=20), (2, 0)),
        Movement("0xm", "bean", 40, True, EPOCH + timedelta(days=40), (3, 0)),
    ]
    holdings = build_holdings(moves)
    now = add_months(EPOCH, 24) - timedelta(days=5)
    soon = expiring_lots(holdings, {"bean": FIXED}, now, 30)
    assert [(lot.lot_key, lot.amount_points) for lot in soon] == [("1:0", 100), ("2:0", 60)]


def test_a_debit_above_the_lots_is_a_bug() -> None:
    with pytest.raises(AssertionError):
        build_holdings(
            [
                Movement("0xm", "bean", 10, True, EPOCH, (1, 0)),
                Movement("0xm", "bean", 11, False, EPOCH, (2, 0)),
            ]
        )


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2024, 1, 31, 10, tzinfo=UTC), 1, datetime(2024, 2, 29, 10, tzinfo=UTC)),
        (datetime(2025, 1, 31, tzinfo=UTC), 1, datetime(2025, 2, 28, tzinfo=UTC)),
        (datetime(2024, 11, 15, tzinfo=UTC), 24, datetime(2026, 11, 15, tzinfo=UTC)),
        (datetime(2024, 12, 1, tzinfo=UTC), 1, datetime(2025, 1, 1, tzinfo=UTC)),
    ],
)
def test_add_months_keeps_the_day_or_takes_the_month_end(
    start: datetime, months: int, expected: datetime
) -> None:
    assert add_months(start, months) == expected
