"""kill -9 at every crash window of the pipeline loses nothing and doubles nothing.

Each failpoint (`ALLIANCE_GATEWAY_FAILPOINT`) makes the gateway SIGKILL itself at one point
of the submitter: before signing, after committing the signed transaction but before
sending it, and after sending it but before recording the receipt. For each, a deposit and
a conversion are sent to a gateway started with that failpoint; the process dies (the
client sees a dropped connection or a 202). The gateway is restarted without the
failpoint and the client retries with the same Idempotency-Keys, as a brand's integration
would after a network error. Then both books are checked: each request is one confirmed
operation, the chain applied each exactly once, and nothing is left accepted or submitted.
A last test kills the gateway from outside (SIGKILL) under a load of conversions.

These tests kill their gateway, so they run on a stack of their own.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from alliance.compiler import CompileResult
from gateway.pipeline.failpoints import (
    AFTER_RECORD_BEFORE_SEND,
    AFTER_SEND_BEFORE_SETTLE,
    BEFORE_SIGNING,
)
from tests.gateway.api_client import Api, conversion_body, deposit_body
from tests.gateway.stack import FAILPOINT_VARIABLE, Databases, Stack, build_stack

DEATH_TIMEOUT_S = 30.0
SETUP_BALANCE = 10_000

Request = tuple[str, dict[str, Any], str]
"""(path, body, Idempotency-Key)"""


@pytest.fixture(scope="module")
def crash_stack(
    compiled: CompileResult, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with build_stack("crash", tmp_path_factory.mktemp("gateway-crash"), databases) as built:
        yield built


@pytest.fixture
def crash(crash_stack: Stack) -> Stack:
    """The crash stack with its gateway up (an earlier test may have left it dead)."""
    crash_stack.ensure_gateway()
    return crash_stack


def _send(api: Api, request: Request) -> httpx.Response | httpx.TransportError:
    path, body, key = request
    try:
        return api.post(path, body, key=key)
    except httpx.TransportError as error:
        return error


def _send_all(api: Api, requests: list[Request]) -> list[httpx.Response | httpx.TransportError]:
    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(lambda request: _send(api, request), requests))


def _replay_until_final(api: Api, requests: list[Request]) -> list[dict[str, Any]]:
    """Retry every request with its own key (the client's recovery) and wait for the result."""
    operations = []
    for path, body, key in requests:
        response = api.post(path, body, key=key)
        assert response.status_code in (201, 202), response.text
        operations.append(api.wait_final(response.json()["id"]))
    return operations


def _assert_nothing_unfinished(stack: Stack) -> None:
    assert stack.books.unfinished() == []


@pytest.mark.parametrize(
    "failpoint", [BEFORE_SIGNING, AFTER_RECORD_BEFORE_SEND, AFTER_SEND_BEFORE_SETTLE]
)
def test_a_crash_at_each_failpoint_applies_every_request_exactly_once(
    crash: Stack, failpoint: str
) -> None:
    stack = crash
    api, ledger = stack.api, stack.ledger
    member = api.funded_member("bean", SETUP_BALANCE)
    requests: list[Request] = [
        ("/v1/conversions", conversion_body(member["id"], "bean", "sky", 1_000), uuid.uuid4().hex),
        ("/v1/deposits", deposit_body(member["id"], 500), uuid.uuid4().hex),
    ]
    stack.gateway.restart({FAILPOINT_VARIABLE: failpoint})

    answers = _send_all(api, requests)

    assert stack.gateway.wait_exit(DEATH_TIMEOUT_S) == -signal.SIGKILL, stack.gateway.log_tail()
    for answer in answers:
        assert isinstance(answer, httpx.TransportError) or answer.status_code in (201, 202)
    stack.gateway.start(stack.gateway_env)
    conversion, deposit = _replay_until_final(api, requests)
    assert conversion["status"] == deposit["status"] == "confirmed", (conversion, deposit)
    kinds = [(op.kind, op.status) for op in stack.books.operations_of(member["id"])]
    assert sorted(kinds) == sorted(
        [("deposit", "confirmed"), ("deposit", "confirmed"), ("conversion", "confirmed")]
    )
    assert len(ledger.mints("bean", member["address"])) == 2
    assert len(ledger.conversions(member["address"])) == 1
    assert ledger.balance("bean", member["address"]) == SETUP_BALANCE + 500 - 1_000
    assert ledger.balance("sky", member["address"]) == int(conversion["result"]["amount_out"])
    _assert_nothing_unfinished(stack)


def _wait_for_operations(stack: Stack, member_ids: list[str], count: int) -> None:
    """Until the gateway has recorded at least `count` conversions for these members."""
    deadline = time.monotonic() + DEATH_TIMEOUT_S
    while time.monotonic() < deadline:
        recorded = sum(
            op.kind == "conversion"
            for member_id in member_ids
            for op in stack.books.operations_of(member_id)
        )
        if recorded >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} conversions recorded")


def test_kill_minus_nine_under_load_keeps_the_books(crash: Stack) -> None:
    stack = crash
    api, ledger = stack.api, stack.ledger
    members = [api.funded_member("bean", SETUP_BALANCE) for _ in range(4)]
    requests: list[Request] = [
        (
            "/v1/conversions",
            conversion_body(m["id"], "bean", "sky", 100 * (i + 1)),
            uuid.uuid4().hex,
        )
        for m in members
        for i in range(6)
    ]
    answers: list[Any] = []
    sender = threading.Thread(target=lambda: answers.extend(_send_all(api, requests)))
    sender.start()

    _wait_for_operations(stack, [m["id"] for m in members], len(requests) // 3)
    assert stack.gateway.kill() == -signal.SIGKILL
    sender.join()
    for answer in answers:
        assert isinstance(answer, httpx.TransportError) or answer.status_code in (201, 202)
    stack.gateway.start(stack.gateway_env)
    operations = _replay_until_final(api, requests)

    assert len({op["id"] for op in operations}) == len(requests)
    assert all(op["status"] == "confirmed" for op in operations), operations
    for member in members:
        mine = [op for op in operations if op["member_id"] == member["id"]]
        spent = sum(int(op["result"]["amount_in"]) for op in mine)
        received = sum(int(op["result"]["amount_out"]) for op in mine)
        assert spent == sum(100 * (i + 1) for i in range(6))
        assert ledger.balance("bean", member["address"]) == SETUP_BALANCE - spent
        assert ledger.balance("sky", member["address"]) == received
        assert len(ledger.conversions(member["address"])) == len(mine)
        assert len(stack.books.operations_of(member["id"])) == 1 + len(mine)
    _assert_nothing_unfinished(stack)
