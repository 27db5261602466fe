"""A chain outage loses nothing: writes are accepted durably while the chain is down and
complete exactly once when it returns (docs/api.md, "Writes"; docs/gateway.md, "Pipeline").

Conversions and deposits are in flight when Anvil is stopped (SIGTERM: it writes its state
file on the way out). While it is down, deposits, withdrawals, gifts and conversions must
still be accepted with 202, while a quote, a balance read and `/ready`, which need the
chain, answer 503 `chain_unavailable` with Retry-After. Anvil is then restarted from its
state on the same port; every request is retried with its own Idempotency-Key (a client
that saw an error does that) and must end confirmed, once: the chain's events and balances
are compared with what was asked.

Stopping the chain would break the other modules, so this one has a stack of its own.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from alliance.compiler import CompileResult
from tests.gateway.api_client import Api, assert_problem, conversion_body, deposit_body
from tests.gateway.stack import Databases, Stack, build_stack

CHAIN_READY_TIMEOUT_S = 30.0
SETUP_BALANCE = 10_000
MEMBERS = 3

Request = tuple[str, dict[str, Any], str]
"""(path, body, Idempotency-Key)"""


@pytest.fixture(scope="module")
def chain_stack(
    compiled: CompileResult, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with build_stack("chain", tmp_path_factory.mktemp("gateway-chain"), databases) as built:
        yield built


def _request(path: str, body: dict[str, Any]) -> Request:
    return path, body, uuid.uuid4().hex


def _send_all(api: Api, requests: list[Request]) -> list[httpx.Response]:
    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(lambda r: api.post(r[0], r[1], key=r[2]), requests))


def _in_flight(members: list[dict[str, Any]]) -> list[Request]:
    """Sent just as the chain stops."""
    requests = [
        _request("/v1/conversions", conversion_body(m["id"], "bean", "sky", 200)) for m in members
    ]
    return requests + [_request("/v1/deposits", deposit_body(m["id"], 50)) for m in members]


def _while_down(members: list[dict[str, Any]], recipient: dict[str, Any]) -> list[Request]:
    """Sent while the chain is down: one of each kind of write per member."""
    requests = []
    for m in members:
        requests += [
            _request("/v1/conversions", conversion_body(m["id"], "bean", "sky", 300)),
            _request("/v1/deposits", deposit_body(m["id"], 70)),
            _request(
                "/v1/withdrawals",
                {"member_id": m["id"], "amount": 10, "brand_transaction_id": uuid.uuid4().hex},
            ),
            _request(
                "/v1/gifts",
                {
                    "brand": "bean",
                    "from_member_id": m["id"],
                    "to_member_id": recipient["id"],
                    "amount": 5,
                },
            ),
        ]
    return requests


def test_writes_are_accepted_while_the_chain_is_down_and_complete_once_it_returns(
    chain_stack: Stack,
) -> None:
    api, chain = chain_stack.api, chain_stack.chain
    members = [api.funded_member("bean", SETUP_BALANCE) for _ in range(MEMBERS)]
    recipient = api.register_member("bean")
    in_flight, while_down = _in_flight(members), _while_down(members, recipient)
    flight_answers: list[httpx.Response] = []
    sender = threading.Thread(target=lambda: flight_answers.extend(_send_all(api, in_flight)))

    sender.start()
    assert chain.stop(), "the chain was not running"
    down_answers = _send_all(api, while_down)
    quote = api.post("/v1/quotes", conversion_body(members[0]["id"], "bean", "sky", 100))
    balances = api.get(f"/v1/members/{members[0]['id']}/balances")
    not_ready = api.get("/ready", None)
    sender.join()
    chain.start()
    chain.wait_ready(CHAIN_READY_TIMEOUT_S)

    assert all(a.status_code in (201, 202) for a in flight_answers), [
        a.text for a in flight_answers
    ]
    assert [a.status_code for a in down_answers] == [202] * len(while_down), [
        a.text for a in down_answers
    ]
    for refused in (quote, balances, not_ready):  # reads that need the chain
        assert_problem(refused, 503, "chain_unavailable")
        assert int(refused.headers["Retry-After"]) > 0
    assert api.get("/ready", None).status_code == 200
    operations = _replay_until_final(api, in_flight + while_down)
    assert all(op["status"] == "confirmed" for op in operations), operations
    _assert_books(chain_stack, members, recipient, operations)


def _replay_until_final(api: Api, requests: list[Request]) -> list[dict[str, Any]]:
    operations = []
    for path, body, key in requests:
        response = api.post(path, body, key=key)
        assert response.status_code in (201, 202), response.text
        operations.append(api.wait_final(response.json()["id"]))
    assert len({operation["id"] for operation in operations}) == len(requests)
    return operations


def _assert_books(
    stack: Stack,
    members: list[dict[str, Any]],
    recipient: dict[str, Any],
    operations: list[dict[str, Any]],
) -> None:
    ledger = stack.ledger
    for member in members:
        mine = [op for op in operations if op["member_id"] == member["id"]]
        conversions = [op for op in mine if op["kind"] == "conversion"]
        received = sum(int(op["result"]["amount_out"]) for op in conversions)
        assert len(ledger.mints("bean", member["address"])) == 3
        assert len(ledger.conversions(member["address"])) == 2
        assert ledger.balance("bean", member["address"]) == (
            SETUP_BALANCE + 50 + 70 - 200 - 300 - 10 - 5
        )
        assert ledger.balance("sky", member["address"]) == received
        assert len(stack.books.operations_of(member["id"])) == 1 + len(mine)
    assert ledger.balance("bean", recipient["address"]) == 5 * len(members)
    assert stack.books.unfinished() == []
