"""Requests waiting for their operations: a submitter's wake-up ends a wait at once, from
another thread; without one, the waiters' shared tick ends it within `TICK_S` (so a
request can look at the database itself), and a wait that ended does not keep its
callbacks on the shared tick.

Real asyncio loops and threads, as the gateway runs them.
"""

from __future__ import annotations

import asyncio
import threading
import time

from gateway.services.operations import OperationWaiters


def test_a_wake_up_from_another_thread_ends_the_wait_at_once() -> None:
    waiters = OperationWaiters()

    async def scenario() -> float:
        woken = waiters.future_for(7)
        threading.Timer(0.05, waiters.notify, args=([7],)).start()
        started = time.monotonic()
        while not woken.done():
            await waiters.woken_or_tick(woken)
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 0.2


def test_without_a_wake_up_the_shared_tick_ends_every_wait() -> None:
    waiters = OperationWaiters()

    async def scenario() -> tuple[float, list[bool]]:
        futures = [waiters.future_for(operation_id) for operation_id in range(50)]
        started = time.monotonic()
        await asyncio.gather(*(waiters.woken_or_tick(woken) for woken in futures))
        return time.monotonic() - started, [woken.done() for woken in futures]

    elapsed, done = asyncio.run(scenario())

    assert elapsed <= OperationWaiters.TICK_S + 0.2
    assert not any(done)  # a tick is no wake-up: each request looks for itself


def test_a_finished_wait_leaves_no_callback_on_the_tick() -> None:
    waiters = OperationWaiters()

    async def scenario() -> int:
        woken = waiters.future_for(1)
        waiters.notify([1])
        await waiters.woken_or_tick(woken)  # already done: returns at once
        other = waiters.future_for(2)
        waiting = asyncio.ensure_future(waiters.woken_or_tick(other))
        await asyncio.sleep(0)
        waiters.notify([2])
        await waiting
        tick = next(iter(waiters._ticks.values()))
        return len(tick._callbacks or [])  # type: ignore[attr-defined]

    assert asyncio.run(scenario()) == 0
