"""Expiry on a real stack: Anvil, the deployed alliance, the gateway serving and its
pipeline burning, the gateway's real database, a brand's webhook receiver.

Proves: expiry burns exactly the expired lots (first in, first out, after a withdrawal and
a later deposit), each with the token's Expiry reason code; a run that crashes between its
transactions and is run again, and then re-runs of the same and the next period, burn
exactly once; members with points expiring within the warning window are announced to the
brand by webhook, and the same lot is announced again only after a week.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from alliance.compiler import CompileResult
from alliance.db.models import Operation, OperationKind, OperationStatus
from alliance.db.risk import ExpiryBurnRecord
from gateway.services.operations import create_operation
from gateway.webhooks import enqueue_brand_event
from settlement.expiry import EXPIRING_EVENT, ExpirySettings, expire, replay
from settlement.lots import ExpiryPolicy
from tests.gateway.stack import Databases, Stack, build_stack
from tests.settlement.chain_support import (
    Receiver,
    advance_chain_time,
    read_chain,
    settlement_sessions,
    webhook_receiver,
)

DAY_S = 86_400
EXPIRY_REASON = 4
POLICIES = {"bean": ExpiryPolicy("fixed", 1)}
"""A one-month term, so the test moves the chain's clock by weeks, not years."""


class Crash(Exception):
    """Stands in for the process dying between two of the run's transactions."""


@pytest.fixture(scope="module")
def stack(
    compiled: CompileResult, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with build_stack("expiry", tmp_path_factory.mktemp("expiry"), databases) as built:
        yield built


@pytest.fixture(scope="module")
def receiver(stack: Stack) -> Iterator[Receiver]:
    with webhook_receiver() as running:
        response = stack.api.post("/v1/webhooks", {"url": running.url}, "brand-bean")
        assert response.status_code == 201, response.text
        yield running


def _confirmed(stack: Stack, operation: dict[str, Any]) -> None:
    final = stack.api.wait_final(operation["id"])
    assert final["status"] == "confirmed", final


def _withdraw(stack: Stack, member_id: str, amount: int) -> None:
    body = {"member_id": member_id, "amount": amount, "brand_transaction_id": f"w-{member_id}"}
    response = stack.api.post("/v1/withdrawals", body, "brand-bean")
    assert response.status_code == 202, response.text
    _confirmed(stack, response.json())


def _run(stack: Stack, period_id: int, settings: ExpirySettings, **extra: Any) -> Any:
    chain = read_chain(stack)
    with settlement_sessions(stack) as sessions:
        lower = {address.lower(): brand for address, brand in chain.token_brand.items()}
        return expire(
            sessions,
            replay(chain.events, chain.times, lower),
            period_id=period_id,
            now=chain.head_time,
            policies=POLICIES,
            settings=settings,
            create_operation=create_operation,
            notify=enqueue_brand_event,
            **extra,
        )


def _expiry_operations(stack: Stack) -> list[Operation]:
    with settlement_sessions(stack) as sessions, sessions() as session:
        return list(
            session.scalars(
                select(Operation)
                .where(Operation.kind == OperationKind.EXPIRY)
                .order_by(Operation.id)
            )
        )


def _wait_all_final(stack: Stack, timeout_s: float = 60) -> list[Operation]:
    deadline = time.monotonic() + timeout_s
    while True:
        operations = _expiry_operations(stack)
        if all(OperationStatus(o.status).is_final for o in operations):
            return operations
        assert time.monotonic() < deadline, [o.status for o in operations]
        time.sleep(0.2)


def _expiry_burns_on_chain(stack: Stack) -> dict[str, int]:
    """Member address (lower-case) → points burned with the Expiry reason."""
    burned: dict[str, int] = {}
    for event in read_chain(stack).events:
        if event.name == "PointsBurned" and event.args["reason"] == EXPIRY_REASON:
            account = event.args["account"].lower()
            burned[account] = burned.get(account, 0) + int(event.args["amount"])
    return burned


def test_expiry_burns_exactly_the_expired_lots_once(stack: Stack, receiver: Receiver) -> None:
    api = stack.api
    keeper = api.funded_member("bean", 1_000)
    idle = api.funded_member("bean", 200)
    _withdraw(stack, keeper["id"], 300)  # consumes the oldest lot first: 700 of it remain
    advance_chain_time(stack, 20 * DAY_S)
    _confirmed(stack, api.deposit(keeper["id"], 500))  # a lot that is not due yet
    advance_chain_time(stack, 12 * DAY_S)
    late = api.funded_member("bean", 50)

    # A crash after the first transaction (one burn per transaction), then the re-run.
    one_per_batch = ExpirySettings(burns_per_transaction_max=1)

    def crash(batches: int) -> None:
        raise Crash(f"after batch {batches}")

    with pytest.raises(Crash):
        _run(stack, 20261201, one_per_batch, after_batch=crash)
    assert len(_expiry_operations(stack)) == 1
    result = _run(stack, 20261201, one_per_batch)
    assert result.operations_created == 1

    operations = _wait_all_final(stack)
    assert [o.status for o in operations] == ["confirmed", "confirmed"]
    keeper_address, idle_address = keeper["address"].lower(), idle["address"].lower()
    assert _expiry_burns_on_chain(stack) == {keeper_address: 700, idle_address: 200}
    balances = stack.ledger.balances
    assert balances(keeper["address"])["bean"] == 500
    assert balances(idle["address"])["bean"] == 0
    assert balances(late["address"])["bean"] == 50

    # Re-running the period, and running the next one, asks for nothing more.
    assert _run(stack, 20261201, ExpirySettings()).operations_created == 0
    advance_chain_time(stack, DAY_S)
    assert _run(stack, 20261202, ExpirySettings()).burns_due == []
    assert _expiry_burns_on_chain(stack) == {keeper_address: 700, idle_address: 200}
    with settlement_sessions(stack) as sessions, sessions() as session:
        records = session.scalars(select(ExpiryBurnRecord)).all()
        assert sorted(r.amount_points for r in records) == [200, 700]


def test_a_rerun_while_a_burn_is_still_in_flight_does_not_ask_again(
    stack: Stack, receiver: Receiver
) -> None:
    # The gateway is stopped: the burn stays `accepted`, so the chain never shows it.
    member = stack.api.funded_member("bean", 400)
    advance_chain_time(stack, 32 * DAY_S)
    stack.gateway.terminate()
    try:
        first = _run(stack, 20270110, ExpirySettings())
        assert [
            b.amount_points for b in first.burns_due if b.member == member["address"].lower()
        ] == [400]
        second = _run(stack, 20270111, ExpirySettings())
        assert all(b.member != member["address"].lower() for b in second.burns_due)
    finally:
        stack.ensure_gateway()
    _wait_all_final(stack)
    assert _expiry_burns_on_chain(stack)[member["address"].lower()] == 400


def _announcements(
    receiver: Receiver, address: str, count: int, timeout_s: float = 30
) -> list[dict[str, Any]]:
    """The `points.expiring` events about `address`, once `count` arrived (or the time is
    up: the caller asserts how many came)."""
    deadline = time.monotonic() + timeout_s
    while True:
        events = receiver.of_type(EXPIRING_EVENT)
        mine = [e for e in events if e["data"]["member_address"] == address]
        if len(mine) >= count or time.monotonic() > deadline:
            return mine
        time.sleep(0.1)


def test_points_about_to_expire_are_announced_weekly(stack: Stack, receiver: Receiver) -> None:
    member = stack.api.funded_member("bean", 300)
    address = member["address"].lower()
    advance_chain_time(stack, 10 * DAY_S)  # expires in about three weeks: inside 30 days
    _run(stack, 20270301, ExpirySettings())
    (announced,) = _announcements(receiver, address, 1)
    assert announced["brand"] == "bean"
    assert announced["data"]["member_id"] == member["id"]
    assert announced["data"]["amount_points"] == "300"
    assert len(announced["data"]["lots"]) == 1

    advance_chain_time(stack, 3 * DAY_S)
    _run(stack, 20270304, ExpirySettings())  # three days later: not again
    # The worker polls every second: a wrong second notice would arrive within 5 s.
    assert len(_announcements(receiver, address, 2, timeout_s=5)) == 1
    advance_chain_time(stack, 5 * DAY_S)
    _run(stack, 20270309, ExpirySettings())  # eight days after the first notice: again
    assert len(_announcements(receiver, address, 2)) == 2
