"""The indexed chain as the fraud checks and expiry read it: decoded events from the
indexer's `chain_events` table (in chain order), and block times.

Stored arguments are JSON (integers as decimal text, bytes and addresses as 0x-hex);
`event_of` turns a stored row back into the `ChainEvent` `alliance.events.LogReader` yields,
so the pure builders take either source.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, case, null, select, type_coerce
from sqlalchemy.orm import Session

from alliance.db.settlement import chain_events_table
from alliance.events import ChainEvent
from alliance.rpc import JsonRpc

STREAM_ROWS = 50_000
"""Rows fetched per round trip while streaming events."""

TIMESTAMP_BATCH_MAX = 500
"""Blocks per batched timestamp request."""


def _unplain(value: Any) -> Any:
    """A stored argument back as decoded: decimal text is an integer (addresses and bytes
    are 0x-hex, so never all digits)."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, list):
        return [_unplain(item) for item in value]
    return value


def stored_rows(
    session: Session, names: Sequence[str], from_block: int, to_block: int
) -> Iterator[Any]:
    """Indexed rows of events called `names` in [from_block, to_block], in chain order, as
    (name, address, block_number, log_index, transaction_hash, account, counterparty,
    amount, args) tuples.

    A `Transfer`'s arguments are exactly its typed columns (from, to, value), so its JSON
    is not even fetched (`args` is None): Transfers are most of a busy day's rows, and
    decoding their JSON was most of the time of every pass over them.
    """
    table = chain_events_table
    is_transfer = table.c.name == "Transfer"
    args = type_coerce(case((is_transfer, null()), else_=table.c.args), JSON)
    query = (
        select(
            table.c.name,
            table.c.address,
            table.c.block_number,
            table.c.log_index,
            table.c.transaction_hash,
            table.c.account,
            table.c.counterparty,
            table.c.amount,
            args.label("args"),
        )
        .where(table.c.name.in_(list(names)))
        .where(table.c.block_number.between(from_block, to_block))
        .order_by(table.c.block_number, table.c.log_index)
        .execution_options(yield_per=STREAM_ROWS)
    )
    # Core rows straight from the connection: the ORM's row machinery costs a quarter more.
    yield from session.connection().execute(query)


def event_of(row: Any) -> ChainEvent:
    """A row of `stored_rows` as the `ChainEvent` `alliance.events.LogReader` yields."""
    name, address, block_number, log_index, transaction_hash, account, counterparty = row[:7]
    amount, args = row[7], row[8]
    if args is None:
        arguments = {"from": account, "to": counterparty, "value": amount}
    else:
        arguments = {key: _unplain(value) for key, value in args.items()}
    return ChainEvent(
        str(name), str(address), int(block_number), int(log_index), str(transaction_hash), arguments
    )


def block_times(rpc: JsonRpc, numbers: Iterable[int]) -> dict[int, datetime]:
    """Block number → block time (UTC) for `numbers`, in bounded batches."""
    wanted = sorted(set(numbers))
    times: dict[int, datetime] = {}
    for start in range(0, len(wanted), TIMESTAMP_BATCH_MAX):
        chunk = wanted[start : start + TIMESTAMP_BATCH_MAX]
        for number, stamp in rpc.block_timestamps(chunk).items():
            times[number] = datetime.fromtimestamp(stamp, UTC)
    return times


def stored_block_times(
    session: Session, rpc: JsonRpc, names: Sequence[str], from_block: int, to_block: int
) -> dict[int, datetime]:
    """Block times of every block holding an indexed event called `names` in the range (so
    the events themselves can be streamed afterwards)."""
    table = chain_events_table
    numbers: Iterable[int] = session.scalars(
        select(table.c.block_number)
        .where(table.c.name.in_(list(names)))
        .where(table.c.block_number.between(from_block, to_block))
        .distinct()
    )
    return block_times(rpc, numbers)
