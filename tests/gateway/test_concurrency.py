"""Concurrent conversions against one balance never overdraw it, and every request ends in a
definite state.

Fifty conversions are released together (a thread barrier) against a balance that covers
only some of them. Each request must end confirmed, or refused as `insufficient_points`
(at once with 422, or as a failed operation); then the chain is read to check the books:
the balance is what the deposit minus the confirmed conversions leaves, never below zero,
and the chain saw exactly the confirmed conversions. A second test converts for many
members at once (one batch) and checks every member's own figures.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from alliance.money import RATE_SCALE, quote_conversion
from tests.gateway.api_client import Api, conversion_body
from tests.gateway.stack import Books, ChainView

CONVERSIONS = 50
AMOUNT_IN = 500
BALANCE = 10_000
"""Covers BALANCE // AMOUNT_IN = 20 of the 50 conversions."""

BEAN_RATE, CART_RATE = RATE_SCALE // 100, RATE_SCALE // 200
"""config/alliance.yaml: bean 100 points per value unit, cart 200."""
DEFAULT_FEE_BPS = 100


def _together(count: int, send: Any) -> list[httpx.Response]:
    barrier = threading.Barrier(count)

    def one(index: int) -> httpx.Response:
        barrier.wait()
        return send(index)  # type: ignore[no-any-return]

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def _final(api: Api, response: httpx.Response) -> dict[str, Any]:
    """The final operation behind a conversion answer (None for a refusal at the door)."""
    if response.status_code in (201, 202):
        return api.wait_final(response.json()["id"])
    body: dict[str, Any] = response.json()
    return body.get("operation") or {"status": "refused", "error": {"code": body["code"]}}


def test_fifty_concurrent_conversions_never_overdraw_one_balance(
    api: Api, books: Books, ledger: ChainView
) -> None:
    member = api.funded_member("bean", BALANCE)
    body = conversion_body(member["id"], "bean", "sky", AMOUNT_IN)

    answers = _together(CONVERSIONS, lambda _: api.post("/v1/conversions", body))

    assert {a.status_code for a in answers} <= {201, 202, 422}, [a.text for a in answers]
    refused = [a.json() for a in answers if a.status_code == 422]
    assert all(problem["code"] == "insufficient_points" for problem in refused), refused
    finals = [_final(api, answer) for answer in answers]
    confirmed = [op for op in finals if op["status"] == "confirmed"]
    not_confirmed = [op for op in finals if op["status"] != "confirmed"]
    assert all(op["error"]["code"] == "insufficient_points" for op in not_confirmed), not_confirmed
    spent = sum(int(op["result"]["amount_in"]) for op in confirmed)
    received = sum(int(op["result"]["amount_out"]) for op in confirmed)
    assert spent <= BALANCE
    # Every conversion is the same size, so the balance covers exactly BALANCE // AMOUNT_IN.
    assert len(confirmed) == BALANCE // AMOUNT_IN
    assert ledger.balance("bean", member["address"]) == BALANCE - spent == 0
    assert ledger.balance("sky", member["address"]) == received
    assert len(ledger.conversions(member["address"])) == len(confirmed)
    assert all(op.status in ("confirmed", "failed") for op in books.operations_of(member["id"]))


def test_concurrent_conversions_of_many_members_each_keep_their_own_figures(
    api: Api, ledger: ChainView
) -> None:
    members = [api.funded_member("bean", 2_000) for _ in range(12)]
    amounts = [100 * (index + 1) for index in range(len(members))]

    answers = _together(
        len(members),
        lambda i: api.post(
            "/v1/conversions", conversion_body(members[i]["id"], "bean", "cart", amounts[i])
        ),
    )

    for member, amount, answer in zip(members, amounts, answers, strict=True):
        operation = _final(api, answer)
        assert operation["status"] == "confirmed", operation
        assert operation["member_id"] == member["id"]
        assert int(operation["result"]["amount_in"]) == amount
        expected = quote_conversion(amount, BEAN_RATE, CART_RATE, DEFAULT_FEE_BPS)
        assert int(operation["result"]["amount_out"]) == expected.amount_out_points
        assert ledger.balance("bean", member["address"]) == 2_000 - amount
        assert ledger.balance("cart", member["address"]) == int(operation["result"]["amount_out"])


def test_concurrent_checks_answer_each_conversion_for_itself(
    api: Api, books: Books, ledger: ChainView
) -> None:
    # The chain checks of conversions arriving together go to the node in one batch; each
    # answer must still be its own: a refusal for a member who lacks the points (nothing
    # recorded), a confirmation for one who has them.
    members = [api.funded_member("bean", 1_000) for _ in range(12)]
    amounts = [500 if index % 2 else 5_000 for index in range(len(members))]

    answers = _together(
        len(members),
        lambda i: api.post(
            "/v1/conversions", conversion_body(members[i]["id"], "bean", "cart", amounts[i])
        ),
    )

    for member, amount, answer in zip(members, amounts, answers, strict=True):
        if amount > 1_000:
            assert answer.status_code == 422, answer.text
            assert answer.json()["code"] == "insufficient_points"
            assert [op.kind for op in books.operations_of(member["id"])] == ["deposit"]
            assert ledger.balance("bean", member["address"]) == 1_000
        else:
            assert _final(api, answer)["status"] == "confirmed", answer.text
            assert ledger.balance("bean", member["address"]) == 1_000 - amount
