"""Where the replay's events come from: the chain in adaptive windows, or the local cache.

A `Segment` is the raw logs of a contiguous block range plus the timestamps of the blocks
whose checks need one and the hash of its last block. `ChainSegments` reads segments
from the node, sizing each window so that it holds about `LOGS_PER_WINDOW` logs (a dense
chain needs narrow windows, an idle one wide ones), halving a window the node refuses,
and reading the next window in a background thread while the caller replays the current
one. `segments()` serves the cached prefix first (`alliance.audit.cache`) and the rest
from the chain, storing what it reads.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from alliance.errors import ChainRpcFailed
from alliance.rpc import JsonRpc

LOGS_PER_WINDOW = 20_000
"""Target logs per eth_getLogs window: big enough to amortise a round trip, small enough
that a response (~700 bytes a log) stays a few megabytes."""

WINDOW_BLOCKS_MAX = 5_000
"""Widest window (nodes cap eth_getLogs ranges; Besu's default is 5,000 blocks)."""

WINDOW_BLOCKS_FIRST = 64
"""First window: narrow, since nothing is known yet about the chain's density."""

WINDOW_GROWTH_MAX = 4
"""A window grows at most this much per step, so one idle stretch cannot overshoot."""

PREFETCH_WINDOWS = 2
"""Windows read ahead of the replay (bounds memory to a few windows)."""

T = TypeVar("T")


@dataclass(frozen=True)
class Segment:
    """The raw logs of blocks [first, last], in chain order."""

    first: int
    last: int
    logs: list[dict[str, Any]]
    timestamps: dict[int, int]
    """Block → timestamp for every block holding a timed event (see `ChainSegments`)."""
    last_block_hash: str

    def trimmed(self, last: int) -> Segment:
        """The part of the segment up to block `last`."""
        if last >= self.last:
            return self
        logs = [log for log in self.logs if int(log["blockNumber"], 16) <= last]
        return Segment(self.first, last, logs, self.timestamps, "")


class ChainSegments:
    """Reads segments of the given contracts' logs from the node."""

    def __init__(
        self,
        rpc: JsonRpc,
        addresses: Sequence[str],
        timed_topics: set[str],
        *,
        logs_per_window: int = LOGS_PER_WINDOW,
        window_blocks_max: int = WINDOW_BLOCKS_MAX,
    ) -> None:
        self.rpc = rpc
        self.addresses = list(addresses)
        self.timed_topics = timed_topics
        self.logs_per_window = logs_per_window
        self.window_blocks_max = window_blocks_max

    def segments(self, first: int, last: int) -> Iterator[Segment]:
        """Segments covering [first, last] in order."""
        start, size = first, min(WINDOW_BLOCKS_FIRST, self.window_blocks_max)
        while start <= last:
            end = min(start + size - 1, last)
            try:
                logs = self.rpc.get_logs(self.addresses, start, end)
            except ChainRpcFailed:
                if end == start:
                    raise
                size = max(1, (end - start + 1) // 2)
                continue
            yield self._segment(start, end, logs)
            size = self._next_size(end - start + 1, len(logs))
            start = end + 1

    def _next_size(self, size: int, count: int) -> int:
        wanted = size * self.logs_per_window // max(count, 1)
        return max(1, min(wanted, size * WINDOW_GROWTH_MAX, self.window_blocks_max))

    def _segment(self, first: int, last: int, logs: list[dict[str, Any]]) -> Segment:
        timed = {
            int(log["blockNumber"], 16)
            for log in logs
            if log["topics"] and log["topics"][0] in self.timed_topics
        }
        numbers = sorted(timed | {last})
        blocks = self.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        by_number = {int(block["number"], 16): block for block in blocks}
        return Segment(
            first=first,
            last=last,
            logs=[_compact(log) for log in logs],
            timestamps={n: int(by_number[n]["timestamp"], 16) for n in timed},
            last_block_hash=by_number[last]["hash"],
        )


def _compact(log: dict[str, Any]) -> dict[str, Any]:
    """The fields the replay and the cache keep of a raw log."""
    return {
        "address": log["address"],
        "topics": log["topics"],
        "data": log["data"],
        "blockNumber": log["blockNumber"],
        "logIndex": log["logIndex"],
        "transactionHash": log["transactionHash"],
    }


def prefetched(produce: Callable[[], Iterator[T]], depth: int = PREFETCH_WINDOWS) -> Iterator[T]:
    """Run `produce()` in a background thread, `depth` items ahead of the consumer.

    The node works on the next window while this process replays the current one; an
    exception in the producer is raised in the consumer.
    """
    items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def run() -> None:
        try:
            for item in produce():
                while not stop.is_set():
                    try:
                        items.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(("done", None))
        except BaseException as error:  # Handed to the consumer, which re-raises it.
            items.put(("error", error))

    thread = threading.Thread(target=run, name="audit-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
