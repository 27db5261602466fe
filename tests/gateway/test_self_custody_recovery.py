"""Custody changes survive a chain outage and a gateway crash, and apply exactly once
(docs/api.md, "Self-custody"; docs/gateway.md, "Self-custody").

Outage: signatures are made while the chain answers, then Anvil is stopped (SIGTERM, it
keeps its state). A registration with a wallet and a custody change must still be accepted
(the nonce cannot be read: the chain decides later), a second change of the same member is
refused while the first is on its way, and the new member is `self` at once. When Anvil is
back, both apply once. A registration whose signature expires during the outage fails
`signature_expired` and leaves the member custodial, as the chain has them; a new
signature then makes them `self`.

Crash: for each failpoint of the submitter, a custody change is sent to a gateway that
SIGKILLs itself there, the gateway is restarted and the client repeats its request with the
same Idempotency-Key; the chain must show exactly one `SelfCustodySet` for it. A signed
conversion (request id reserved by its quote) goes through the same: exactly one
`Converted` with the quote's request id, and the points moved once.

These tests stop the chain and kill the gateway, so they run on a stack of their own.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from alliance.compiler import CompileResult
from gateway.pipeline.failpoints import (
    AFTER_RECORD_BEFORE_SEND,
    AFTER_SEND_BEFORE_SETTLE,
    BEFORE_SIGNING,
)
from tests.gateway.api_client import Api, assert_problem, conversion_body
from tests.gateway.stack import FAILPOINT_VARIABLE, ChainView, Databases, Stack, build_stack
from tests.gateway.wallets import (
    new_wallet,
    register_wallet_member,
    signable_quote,
    signed_conversion,
    signed_custody,
    wallet_registration,
)

CHAIN_READY_TIMEOUT_S = 30.0
DEATH_TIMEOUT_S = 30.0
EXPIRING_S = 4
"""How long the signature that expires during the outage is valid for."""


@pytest.fixture(scope="module")
def custody_stack(
    compiled: CompileResult, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with build_stack("custody", tmp_path_factory.mktemp("gateway-custody"), databases) as built:
        yield built


@pytest.fixture
def stack(custody_stack: Stack) -> Stack:
    """The custody stack with its gateway up (an earlier test may have left it dead)."""
    custody_stack.ensure_gateway()
    return custody_stack


def _custody_logs(ledger: ChainView, address: str) -> list[bool]:
    event = ledger.exchange.events.SelfCustodySet()
    logs = event.get_logs(argument_filters={"member": address}, from_block=ledger.from_block)
    return [bool(log["args"]["enabled"]) for log in logs]


def _member(api: Api, member_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/members/{member_id}")
    assert response.status_code == 200, response.text
    member: dict[str, Any] = response.json()
    return member


def test_custody_changes_are_accepted_while_the_chain_is_down_and_apply_once_it_returns(
    stack: Stack,
) -> None:
    api, chain, ledger = stack.api, stack.chain, stack.ledger
    member, wallet = register_wallet_member(api)
    hand_back = {"enabled": False, **signed_custody(api, wallet, False)}
    newcomer = new_wallet()
    registration = wallet_registration(api, newcomer)
    path, key = f"/v1/members/{member['id']}/custody", uuid.uuid4().hex

    assert chain.stop(), "the chain was not running"
    try:
        changed = api.post(path, hand_back, key=key)
        again = api.post(path, hand_back)  # the same change under another key
        registered = api.post("/v1/members", registration)
        new_member = registered.json()
        converted = api.post(
            "/v1/conversions", conversion_body(new_member.get("id", ""), "bean", "sky", 10)
        )
    finally:
        chain.start()
        chain.wait_ready(CHAIN_READY_TIMEOUT_S)

    assert changed.status_code == 202, changed.text
    assert changed.json()["status"] == "accepted"
    body = assert_problem(again, 409, "custody_change_pending")
    assert body["operation_id"] == changed.json()["id"]
    assert registered.status_code == 201, registered.text
    assert (new_member["custody"], new_member["wallet"]) == ("self", True)
    assert_problem(converted, 422, "signature_required")  # self at once, chain or not
    operation = api.wait_final(changed.json()["id"])
    created = api.wait_final(new_member["custody_operation_id"])
    assert operation["status"] == created["status"] == "confirmed", (operation, created)
    assert _custody_logs(ledger, wallet.address) == [True, False]
    assert _custody_logs(ledger, newcomer.address) == [True]
    assert _member(api, member["id"])["custody"] == "custodial"
    assert _member(api, new_member["id"])["custody"] == "self"
    replay = api.post(path, hand_back, key=key)
    assert replay.status_code == 201, replay.text
    assert replay.json()["id"] == operation["id"]


def test_a_registration_whose_signature_expires_in_an_outage_leaves_the_member_custodial(
    stack: Stack,
) -> None:
    api, chain, ledger = stack.api, stack.chain, stack.ledger
    wallet = new_wallet()
    registration = wallet_registration(api, wallet, deadline=int(time.time()) + EXPIRING_S)

    assert chain.stop(), "the chain was not running"
    try:
        registered = api.post("/v1/members", registration)
        time.sleep(EXPIRING_S + 1)
    finally:
        chain.start()
        chain.wait_ready(CHAIN_READY_TIMEOUT_S)

    assert registered.status_code == 201, registered.text
    member = registered.json()
    failed = api.wait_final(member["custody_operation_id"])
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "signature_expired", failed
    assert _custody_logs(ledger, wallet.address) == []
    read = _member(api, member["id"])
    assert (read["custody"], read["wallet"], read["address"]) == (
        "custodial",
        True,
        wallet.address,
    )
    retried = api.post(
        f"/v1/members/{member['id']}/custody",
        {"enabled": True, **signed_custody(api, wallet, True)},
    )
    assert retried.status_code == 201, retried.text
    assert _custody_logs(ledger, wallet.address) == [True]
    assert _member(api, member["id"])["custody"] == "self"


@pytest.mark.parametrize(
    "failpoint", [BEFORE_SIGNING, AFTER_RECORD_BEFORE_SEND, AFTER_SEND_BEFORE_SETTLE]
)
def test_a_crash_at_each_failpoint_applies_a_custody_change_exactly_once(
    stack: Stack, failpoint: str
) -> None:
    api, ledger = stack.api, stack.ledger
    member, wallet = register_wallet_member(api)
    path, key = f"/v1/members/{member['id']}/custody", uuid.uuid4().hex
    body = {"enabled": False, **signed_custody(api, wallet, False)}
    stack.gateway.restart({FAILPOINT_VARIABLE: failpoint})

    try:
        answer: httpx.Response | None = api.post(path, body, key=key)
    except httpx.TransportError:
        answer = None

    assert stack.gateway.wait_exit(DEATH_TIMEOUT_S) == -signal.SIGKILL, stack.gateway.log_tail()
    assert answer is None or answer.status_code in (201, 202), answer.text
    stack.gateway.start(stack.gateway_env)
    replayed = api.post(path, body, key=key)
    assert replayed.status_code in (201, 202), replayed.text
    operation = api.wait_final(replayed.json()["id"])
    assert operation["status"] == "confirmed", operation
    assert _custody_logs(ledger, wallet.address) == [True, False]
    assert not ledger.exchange.functions.isSelfCustodied(wallet.address).call()
    assert _member(api, member["id"])["custody"] == "custodial"
    assert [row for row in stack.books.unfinished() if row.kind == "custody"] == []


@pytest.mark.parametrize(
    "failpoint", [BEFORE_SIGNING, AFTER_RECORD_BEFORE_SEND, AFTER_SEND_BEFORE_SETTLE]
)
def test_a_crash_at_each_failpoint_applies_a_signed_conversion_exactly_once(
    stack: Stack, failpoint: str
) -> None:
    api, ledger = stack.api, stack.ledger
    member, wallet = register_wallet_member(api)
    deposit = api.wait_final(api.deposit(member["id"], 3_000)["id"])
    assert deposit["status"] == "confirmed", deposit
    quote = signable_quote(api, member["id"], 1_000)
    body, key = signed_conversion(member["id"], quote, wallet), uuid.uuid4().hex
    stack.gateway.restart({FAILPOINT_VARIABLE: failpoint})

    try:
        answer: httpx.Response | None = api.post("/v1/conversions", body, key=key)
    except httpx.TransportError:
        answer = None

    assert stack.gateway.wait_exit(DEATH_TIMEOUT_S) == -signal.SIGKILL, stack.gateway.log_tail()
    assert answer is None or answer.status_code in (201, 202), answer.text
    stack.gateway.start(stack.gateway_env)
    replayed = api.post("/v1/conversions", body, key=key)
    assert replayed.status_code in (201, 202), replayed.text
    operation = api.wait_final(replayed.json()["id"])
    assert operation["status"] == "confirmed", operation
    assert operation["request_id"] == quote["request_id"]
    events = ledger.conversions(wallet.address)
    assert [event["args"]["requestId"] for event in events] == [int(quote["request_id"])]
    assert ledger.balance("bean", wallet.address) == 2_000
    assert ledger.balance("sky", wallet.address) == quote["amount_out"]
    assert_problem(api.post("/v1/conversions", body), 409, "quote_used")
    assert [row for row in stack.books.unfinished() if row.kind == "conversion"] == []
