"""A period's bounds: its local day, its id, and its opening and closing blocks.

A period is one calendar day in the alliance's time zone; its id is `yyyymmdd`. Its closing
block is the last block whose timestamp is before the next local midnight, found by binary
search on block timestamps; its opening block is the previous anchored period's closing
block + 1 (the deploy block for the first period).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alliance.rpc import JsonRpc
from settlement.errors import PeriodEmpty, PeriodNotClosable


def period_id_of(day: date) -> int:
    """The on-chain id of the period of `day` (yyyymmdd)."""
    return day.year * 10_000 + day.month * 100 + day.day


def day_of(period_id: int) -> date:
    """The local day of a period id."""
    return date(period_id // 10_000, period_id // 100 % 100, period_id % 100)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[int, int]:
    """[start, end) of the local day as Unix timestamps (end = the next local midnight)."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return int(start.timestamp()), int(end.timestamp())


@dataclass(frozen=True)
class PeriodWindow:
    """What the run needs to know about where a period sits on the chain."""

    period_id: int
    day: date
    start_timestamp: int
    end_timestamp: int
    opening_block: int
    closing_block: int


def block_timestamp(rpc: JsonRpc, number: int) -> int:
    return rpc.block_timestamps([number])[number]


def first_block_at_or_after(rpc: JsonRpc, timestamp: int, low: int, high: int) -> int | None:
    """The first block in [low, high] with a timestamp ≥ `timestamp` (None if none is)."""
    if block_timestamp(rpc, high) < timestamp:
        return None
    while low < high:
        middle = (low + high) // 2
        if block_timestamp(rpc, middle) < timestamp:
            low = middle + 1
        else:
            high = middle
    return low


def locate_period(
    rpc: JsonRpc,
    day: date,
    zone: ZoneInfo,
    *,
    opening_block: int,
    confirmed_head: int,
) -> PeriodWindow:
    """The period of `day`, closable only once a block at or after the next midnight is
    `confirmed_head` or below (the caller subtracts the confirmation depth)."""
    period_id = period_id_of(day)
    start, end = day_bounds(day, zone)
    if confirmed_head < opening_block:
        raise PeriodNotClosable(period_id, "no confirmed block after the previous period")
    boundary = first_block_at_or_after(rpc, end, opening_block, confirmed_head)
    if boundary is None:
        raise PeriodNotClosable(period_id, "no confirmed block at or after its end yet")
    closing = boundary - 1
    if closing < opening_block:
        raise PeriodEmpty(period_id, "no block in the period")
    return PeriodWindow(period_id, day, start, end, opening_block, closing)
