"""Group work that many concurrent requests ask for into one call on one worker thread.

Each request thread hop costs a wake-up, and each write transaction takes the database's
write lock: under hundreds of conversions a second, per-request transactions queue on that
lock while their threads take turns at the GIL, which stretches every one of them (and the
submitter's, queued behind). A `Batcher` instead takes everything queued when its thread
comes round, hands the list to one function (one transaction, one query), and resolves
each request's future on its own event loop. Under light load a batch is one item, so
latency is one hop, as before; under heavy load batches grow and the cost per item falls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

logger = logging.getLogger("gateway.batching")

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Pending(Generic[Item, Result]):
    item: Item
    future: asyncio.Future[Result]


_STOP = object()


class Batcher(threading.Thread, Generic[Item, Result]):
    """A worker thread that runs `handle(items)` for whatever has been queued at once.

    `handle` returns one outcome per item, in order: a result, or an exception for that
    item alone. An exception escaping `handle` fails the whole batch with it.
    """

    def __init__(
        self,
        name: str,
        handle: Callable[[list[Item]], Sequence[Result | BaseException]],
        batch_size_max: int,
    ) -> None:
        super().__init__(name=f"batcher-{name}", daemon=True)
        self._handle = handle
        self._batch_size_max = batch_size_max
        self._queue: queue.SimpleQueue[_Pending[Item, Result] | object] = queue.SimpleQueue()

    async def submit(self, item: Item) -> Result:
        """Queue `item` and wait for its outcome (raised if it is an exception)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.put(_Pending(item, future))
        return await future

    def stop(self, timeout_s: float = 10) -> None:
        """Finish what is queued, then stop."""
        self._queue.put(_STOP)
        if self.is_alive():
            self.join(timeout_s)

    def run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[_Pending[Item, Result]] = []
            entry = self._queue.get()
            while True:
                if entry is _STOP:
                    stopping = True
                else:
                    assert isinstance(entry, _Pending)
                    batch.append(entry)
                if stopping or len(batch) >= self._batch_size_max or self._queue.empty():
                    break
                entry = self._queue.get()
            if batch:
                self._run_batch(batch)

    def _run_batch(self, batch: list[_Pending[Item, Result]]) -> None:
        outcomes: Sequence[Result | BaseException]
        try:
            outcomes = self._handle([pending.item for pending in batch])
            assert len(outcomes) == len(batch), "a batch function answers every item"
        except Exception as error:  # the whole batch failed: each request raises it
            logger.debug("%s: batch of %d failed: %r", self.name, len(batch), error)
            outcomes = [error] * len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Result], object]]] = {}
        for pending, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(pending.future.get_loop(), []).append((pending.future, outcome))
        for loop, resolved in by_loop.items():
            # A closed loop (shutdown) has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, resolved)


def _resolve(resolved: list[tuple[asyncio.Future[Result], object]]) -> None:
    for future, outcome in resolved:
        if future.done():
            continue  # the request was cancelled (its client went away)
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)  # type: ignore[arg-type]
