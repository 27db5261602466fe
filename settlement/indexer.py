"""The event indexer: every alliance log into `chain_events`, checkpointed, and proven whole.

`EventIndexer.sync` reads from the checkpoint to the head less the confirmation depth in
bounded windows (`alliance.events.LogReader`), and stores each window's rows together with
the new checkpoint in one short transaction: a crash loses at most the window in flight,
which the next sync reads again. The window shrinks on busy stretches so a transaction
never holds the SQLite write lock for long while the gateway serves traffic.

Listeners that silently drop events are the classic failure of blockchain middleware, so
the index proves itself (`verify`): each token's `totalSupply` at the checkpoint equals the
indexed mints minus burns (`Transfer` from / to the zero address), and random stored ranges
re-read from the chain match the stored rows. A failed proof is a finding, never ignored.
"""

from __future__ import annotations

import contextlib
import json
import queue
import random
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session, sessionmaker

from alliance import chainstate
from alliance.db.session import unit_of_work
from alliance.db.settlement import IndexCheckpoint, chain_events_table
from alliance.events import ChainEvent, LogReader
from alliance.rpc import JsonRpc
from settlement.errors import IndexOvertaken, IndexReorganised
from settlement.failpoints import INDEXER_BEFORE_CHECKPOINT, failpoint

ZERO_ADDRESS = "0x" + "00" * 20
INDEX_NAME = "alliance"
"""The checkpoint row of the alliance contracts' index."""

WINDOW_GROWTH_MAX = 4
"""A window grows at most this many times per step after a quiet stretch."""

SYNC_ATTEMPTS_MAX = 3
"""Syncs overtaken by a concurrent one before giving up (each resumes from its checkpoint)."""

PREFETCH_WINDOWS = 2
"""Windows read ahead of the one being written (each at most ~`logs_per_window_target`
logs, so memory stays bounded)."""

PREFETCH_POLL_S = 0.5
"""How often a reader blocked on a full queue checks whether the writer stopped."""

GAS_PER_LOG_ESTIMATE = 10_000
"""Gas a block spends per alliance log, roughly (a batched conversion ~34k for three logs,
a deposit ~50k for two): how a window is cut before reading it (`_window_end`)."""

HEADER_BATCH_MAX = 500
"""Block headers per batched request while cutting windows."""

WINDOW_START_BLOCKS = 16
"""First window of a sync: small, then grown (at most `WINDOW_GROWTH_MAX` times a step)
toward `logs_per_window_target` logs, because nothing says how busy the next blocks are
(one busy day at `block_range_max` blocks would be millions of logs in one response)."""

HOT_FIELDS: dict[str, tuple[str | None, str | None, str | None, str | None]] = {
    # event: (request id, account, counterparty, amount) argument names
    "Transfer": (None, "from", "to", "value"),
    "PointsMinted": ("requestId", "account", None, "amount"),
    "PointsBurned": ("requestId", "account", None, "amount"),
    "Converted": ("requestId", "member", "toToken", "amountIn"),
    "Gifted": ("requestId", "from", "to", "amount"),
    "ConversionRejected": ("requestId", "member", None, None),
    "ApprovalRequested": ("requestId", "account", None, None),
}
"""Which arguments fill the typed columns, per event (the rest live in `args` only)."""


def plain(value: Any) -> Any:
    """A decoded argument as JSON: integers as decimal text, bytes as 0x-hex."""
    kind = type(value)  # exact types first: this runs for every argument of every log
    if kind is str or kind is bool:
        return value
    if kind is int:
        return str(value)
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    raise AssertionError(f"unexpected decoded value {value!r}")


def event_row(event: ChainEvent) -> dict[str, Any]:
    """The `chain_events` row of a decoded log."""
    request_key, account_key, counterparty_key, amount_key = HOT_FIELDS.get(
        event.name, (None, None, None, None)
    )
    args = event.args
    return {
        "block_number": event.block_number,
        "log_index": event.log_index,
        "transaction_hash": event.transaction_hash,
        "address": event.address,
        "name": event.name,
        "request_id": args[request_key] if request_key else None,
        "account": args[account_key] if account_key else None,
        "counterparty": args[counterparty_key] if counterparty_key else None,
        "amount": args[amount_key] if amount_key else None,
        "args": {name: plain(value) for name, value in args.items()},
    }


def row_fingerprint(row: Mapping[str, Any]) -> str:
    """A canonical text of a stored or freshly read row (for re-scan comparisons)."""
    fields = [
        row["block_number"],
        row["log_index"],
        row["transaction_hash"],
        row["address"],
        row["name"],
        row["args"],
    ]
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class _Window:
    """One block window read from the chain, ready to store with its checkpoint."""

    start: int
    end: int
    rows: list[dict[str, Any]]
    block_hash: str


@dataclass(frozen=True)
class IndexLimits:
    """The indexer's bounds (from `SettlementSettings`)."""

    confirmations: int
    block_range_max: int
    logs_per_window_target: int
    rescan_samples: int
    rescan_blocks: int


class EventIndexer:
    """Keeps `chain_events` up to date with the chain and checks it against chain state."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        rpc: JsonRpc,
        reader: LogReader,
        *,
        from_block: int,
        limits: IndexLimits,
    ) -> None:
        self.factory = factory
        self.rpc = rpc
        self.reader = reader
        self.from_block = from_block
        self.limits = limits

    def checkpoint(self) -> int | None:
        """The last indexed block, or None before the first sync."""
        with self.factory() as session:
            stored = session.get(IndexCheckpoint, INDEX_NAME)
            return None if stored is None else stored.block_number

    def sync(self, to_block: int | None = None) -> int:
        """Index up to `to_block` (default: the head less the confirmation depth); return
        the checkpoint reached. Raises `IndexReorganised` if the chain changed under it.
        Another process indexing at the same time is caught up with, never undone."""
        for _ in range(SYNC_ATTEMPTS_MAX - 1):
            reached = self._sync_once(to_block)
            if reached is not None:
                return reached
        reached = self._sync_once(to_block)
        if reached is None:
            raise IndexOvertaken(SYNC_ATTEMPTS_MAX)
        return reached

    def _sync_once(self, to_block: int | None) -> int | None:
        """One attempt of `sync`: None if another sync stored a window first.

        The next window is read and decoded by a helper thread while this one's rows are
        written: the database write (SQLite releases the GIL while it works) and the node's
        answer overlap, and each window still commits with its checkpoint, in order."""
        last = self._verified_checkpoint()
        target = self.rpc.block_number() - self.limits.confirmations
        if to_block is not None:
            target = min(target, to_block)
        start = self.from_block if last is None else last + 1
        windows: queue.Queue[_Window | BaseException | None] = queue.Queue(PREFETCH_WINDOWS)
        stop = threading.Event()
        reader = threading.Thread(
            target=self._read_windows, args=(start, target, windows, stop), daemon=True
        )
        reader.start()
        try:
            while (window := windows.get()) is not None:
                if isinstance(window, BaseException):
                    raise window
                if not self._store(window):
                    return None
        finally:
            stop.set()
            with contextlib.suppress(queue.Empty):
                windows.get_nowait()  # unblock a reader waiting to put
            reader.join()
        return max(target, last if last is not None else self.from_block - 1)

    def _read_windows(
        self,
        start: int,
        target: int,
        windows: queue.Queue[_Window | BaseException | None],
        stop: threading.Event,
    ) -> None:
        """Read [start, target] window by window into `windows` (then None, or the error)."""
        size = min(WINDOW_START_BLOCKS, self.limits.block_range_max)
        gas_used: dict[int, int] = {}
        try:
            while start <= target and not stop.is_set():
                end = self._window_end(start, min(start + size - 1, target), gas_used)
                events = list(self.reader.events(start, end))
                rows = [event_row(event) for event in events]
                self._put(windows, _Window(start, end, rows, self._block_hash(end)), stop)
                size = self._next_size(size, len(events))
                start = end + 1
            self._put(windows, None, stop)
        except BaseException as error:  # handed to the writer, which raises it
            self._put(windows, error, stop)

    def _window_end(self, start: int, end: int, gas_used: dict[int, int]) -> int:
        """`end`, or earlier where the blocks' gas says the window would hold well over
        `logs_per_window_target` logs (at least one block): the window sizing learns from
        the window before, which is too late when a quiet stretch is followed by full
        blocks, and a window's logs are all in memory at once."""
        missing = [number for number in range(start, end + 1) if number not in gas_used]
        for first in range(0, len(missing), HEADER_BATCH_MAX):
            chunk = missing[first : first + HEADER_BATCH_MAX]
            blocks = self.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in chunk])
            gas_used.update((int(b["number"], 16), int(b["gasUsed"], 16)) for b in blocks)
        budget = self.limits.logs_per_window_target * GAS_PER_LOG_ESTIMATE
        spent = 0
        for number in range(start, end + 1):
            spent += gas_used.pop(number)
            if spent > budget and number > start:
                return number - 1
        return end

    @staticmethod
    def _put(
        windows: queue.Queue[_Window | BaseException | None],
        item: _Window | BaseException | None,
        stop: threading.Event,
    ) -> None:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                windows.put(item, timeout=PREFETCH_POLL_S)
                return

    def _next_size(self, size: int, logs: int) -> int:
        wanted = size * self.limits.logs_per_window_target // max(logs, 1)
        return max(1, min(wanted, size * WINDOW_GROWTH_MAX, self.limits.block_range_max))

    def _verified_checkpoint(self) -> int | None:
        with self.factory() as session:
            stored = session.get(IndexCheckpoint, INDEX_NAME)
            if stored is None:
                return None
            number, stored_hash = stored.block_number, stored.block_hash
        chain_hash = self._block_hash(number)
        if chain_hash != stored_hash:
            raise IndexReorganised(number, stored_hash, chain_hash)
        return number

    def _block_hash(self, number: int) -> str:
        block = self.rpc.call("eth_getBlockByNumber", hex(number), False)
        return str(block["hash"])

    def _store(self, window: _Window) -> bool:
        """Store the window with its checkpoint; False (nothing written) if the checkpoint
        is no longer just before the window: another sync (the service between closes, a
        manual `alliance settle`) stored it first, and this one must not move it back."""
        start, end, rows, block_hash = window.start, window.end, window.rows, window.block_hash
        with unit_of_work(self.factory) as session:
            stored = session.get(IndexCheckpoint, INDEX_NAME, with_for_update=True)
            reached = self.from_block - 1 if stored is None else stored.block_number
            if reached != start - 1:
                return False
            # Rows past the checkpoint cannot exist (rows and checkpoint commit together),
            # but clearing the window makes a re-read idempotent whatever happened before.
            session.execute(
                delete(chain_events_table).where(chain_events_table.c.block_number >= start)
            )
            if rows:
                session.execute(chain_events_table.insert(), rows)
            failpoint(INDEXER_BEFORE_CHECKPOINT)
            if stored is None:
                session.add(
                    IndexCheckpoint(
                        name=INDEX_NAME,
                        from_block=self.from_block,
                        block_number=end,
                        block_hash=block_hash,
                    )
                )
            else:
                stored.block_number, stored.block_hash = end, block_hash
        return True

    # --- proofs ----------------------------------------------------------------------------

    def supply_findings(self, tokens: Mapping[str, str], block: int) -> list[str]:
        """Tokens whose `totalSupply` at `block` differs from indexed mints minus burns.

        `tokens` maps token address (lower-case) to brand code; `block` must be indexed.
        """
        checkpoint = self.checkpoint()
        assert checkpoint is not None and block <= checkpoint, (block, checkpoint)
        on_chain = self.total_supplies(list(tokens), block)
        indexed = self.indexed_supplies(list(tokens), block)
        return [
            f"{code} ({token}): totalSupply {on_chain[token]} at block {block}, "
            f"indexed mints - burns {indexed[token]}"
            for token, code in sorted(tokens.items())
            if on_chain[token] != indexed[token]
        ]

    def total_supplies(self, tokens: Sequence[str], block: int) -> dict[str, int]:
        """Each token's `totalSupply` at `block`, in one batched round trip."""
        if block < self.from_block:
            # Before the deployment there is no token, so no supply; and a node that keeps
            # only recent states (Anvil --prune-history, a non-archive node) cannot answer.
            return dict.fromkeys(tokens, 0)
        return chainstate.total_supplies(self.rpc, tokens, block)

    def indexed_supplies(self, tokens: Sequence[str], block: int) -> dict[str, int]:
        """Σ minted - Σ burned per token over the indexed `Transfer`s up to `block`."""
        table = chain_events_table
        supplies = dict.fromkeys(tokens, 0)
        statement = select(table.c.address, table.c.account, table.c.amount).where(
            table.c.name == "Transfer",
            table.c.block_number <= block,
            or_(table.c.account == ZERO_ADDRESS, table.c.counterparty == ZERO_ADDRESS),
        )
        with self.factory() as session:
            rows: Iterable[Any] = session.execute(statement)
            for address, sender, amount in rows:
                if address in supplies:
                    supplies[address] += amount if sender == ZERO_ADDRESS else -amount
        return supplies

    def rescan_findings(self, rng: random.Random, until_block: int) -> list[str]:
        """Re-read `rescan_samples` random stored ranges from the chain; name each range
        whose logs differ from the stored rows."""
        first, size = self.from_block, self.limits.rescan_blocks
        findings = []
        for _ in range(self.limits.rescan_samples):
            if until_block < first:
                break
            start = rng.randint(first, max(first, until_block - size + 1))
            end = self._rescan_end(start, min(start + size - 1, until_block))
            findings.extend(self.compare_range(start, end))
        return findings

    def _rescan_end(self, start: int, end: int) -> int:
        """`end`, or earlier so that [start, end] holds about `logs_per_window_target` stored
        rows (at least one block): on a busy chain `rescan_blocks` blocks can hold millions
        of logs, and a sample is a spot check, not a second index."""
        table = chain_events_table
        statement = (
            select(table.c.block_number)
            .where(table.c.block_number >= start, table.c.block_number <= end)
            .order_by(table.c.block_number, table.c.log_index)
            .offset(self.limits.logs_per_window_target)
            .limit(1)
        )
        with self.factory() as session:
            beyond = session.scalar(statement)
        return end if beyond is None else max(start, beyond - 1)

    def compare_range(self, start: int, end: int) -> list[str]:
        """Differences between the chain's logs in [start, end] and the stored rows."""
        fresh = [row_fingerprint(event_row(event)) for event in self.reader.events(start, end)]
        stored = [row_fingerprint(row) for row in self.stored_rows(start, end)]
        if fresh == stored:
            return []
        missing = sorted(set(fresh) - set(stored))
        extra = sorted(set(stored) - set(fresh))
        return [
            f"blocks {start}-{end}: chain has {len(fresh)} logs, index {len(stored)}; "
            f"missing {missing[:3]}, unexpected {extra[:3]}"
        ]

    def stored_rows(
        self, start: int, end: int, names: Iterable[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Stored rows of [start, end] in chain order (streamed; optionally some events)."""
        table = chain_events_table
        condition = and_(table.c.block_number >= start, table.c.block_number <= end)
        if names is not None:
            condition = and_(condition, table.c.name.in_(list(names)))
        statement = select(table).where(condition).order_by(table.c.block_number, table.c.log_index)
        with self.factory() as session:
            result = session.execute(statement.execution_options(yield_per=10_000))
            for row in result.mappings():
                yield dict(row)
