"""Idempotency-Key: a retried POST never does its work twice.

Proved over real HTTP against the session gateway, and checked on both books: the gateway's
database (how many operations or members a key produced) and the chain (how many times
the points actually moved). Concurrent retries are fired from threads released together.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.gateway.api_client import Api, assert_problem, conversion_body, deposit_body
from tests.gateway.stack import Books, ChainView

CONCURRENT_RETRIES = 10


def test_a_replayed_deposit_returns_the_same_operation_and_mints_once(
    api: Api, books: Books, ledger: ChainView
) -> None:
    member = api.register_member("bean")
    body, key = deposit_body(member["id"], 700), uuid.uuid4().hex

    first = api.post("/v1/deposits", body, key=key)
    second = api.post("/v1/deposits", body, key=key)
    settled = api.wait_final(first.json()["id"])
    third = api.post("/v1/deposits", body, key=key)

    # Deposits are asynchronous: every answer is 202 with the operation as it stands.
    assert first.status_code == second.status_code == third.status_code == 202, third.text
    assert first.json()["id"] == second.json()["id"] == third.json()["id"]
    assert third.json() == settled
    assert [op.kind for op in books.operations_of(member["id"])] == ["deposit"]
    assert len(ledger.mints("bean", member["address"])) == 1
    assert ledger.balance("bean", member["address"]) == 700


def test_a_replayed_conversion_returns_the_same_result_and_converts_once(
    api: Api, books: Books, ledger: ChainView
) -> None:
    member = api.funded_member("bean", 5_000)
    body, key = conversion_body(member["id"], "bean", "sky", 1_000), uuid.uuid4().hex

    first = api.post("/v1/conversions", body, key=key)
    settled = api.wait_final(first.json()["id"])
    second = api.post("/v1/conversions", body, key=key)

    assert second.status_code == 201, second.text
    assert second.json() == settled
    assert settled["status"] == "confirmed"
    assert len(ledger.conversions(member["address"])) == 1
    assert ledger.balance("bean", member["address"]) == 4_000
    assert ledger.balance("sky", member["address"]) == int(settled["result"]["amount_out"])
    assert [op.kind for op in books.operations_of(member["id"])] == ["deposit", "conversion"]


def test_a_replayed_member_registration_returns_the_same_member(api: Api, books: Books) -> None:
    body, key = {"brand_member_id": f"replayed-{uuid.uuid4().hex[:8]}"}, uuid.uuid4().hex
    members_before = books.member_count()

    first = api.post("/v1/members", body, "brand-bean", key=key)
    second = api.post("/v1/members", body, "brand-bean", key=key)

    assert first.status_code == second.status_code == 201, second.text
    assert first.json() == second.json()
    assert books.member_count() == members_before + 1


def test_the_same_key_with_another_body_is_a_conflict_and_changes_nothing(
    api: Api, books: Books, ledger: ChainView
) -> None:
    member = api.register_member("bean")
    key = uuid.uuid4().hex
    first = api.post("/v1/deposits", deposit_body(member["id"], 300), key=key)

    conflict = api.post("/v1/deposits", deposit_body(member["id"], 301), key=key)

    assert_problem(conflict, 409, "idempotency_conflict")
    assert api.wait_final(first.json()["id"])["status"] == "confirmed"
    assert len(books.operations_of(member["id"])) == 1
    assert ledger.balance("bean", member["address"]) == 300


def test_a_key_belongs_to_the_client_that_sent_it(api: Api, books: Books) -> None:
    bean_member, sky_member = api.register_member("bean"), api.register_member("sky")
    key = uuid.uuid4().hex

    bean = api.post("/v1/deposits", deposit_body(bean_member["id"], 10), "brand-bean", key)
    sky = api.post("/v1/deposits", deposit_body(sky_member["id"], 10), "brand-sky", key)

    assert bean.status_code == sky.status_code == 202, sky.text
    assert bean.json()["id"] != sky.json()["id"]
    assert len(books.operations_of(bean_member["id"])) == 1
    assert len(books.operations_of(sky_member["id"])) == 1


def _writes(member: dict[str, Any], other: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    """One valid request (method, path, body, client) for every write that must carry an
    Idempotency-Key."""
    mid = member["id"]
    gift = {"brand": "bean", "from_member_id": mid, "to_member_id": other["id"], "amount": 5}
    policy = {"enabled": True, "fee_bps": 100, "max_amount_out": 1_000_000}
    return [
        ("POST", "/v1/members", {"brand_member_id": uuid.uuid4().hex}, "brand-bean"),
        ("POST", f"/v1/members/{mid}/link-codes", {}, "brand-bean"),
        ("POST", "/v1/members/link", {"brand_member_id": "m", "link_code": "x" * 24},
         "brand-bean"),
        ("POST", "/v1/deposits", deposit_body(mid, 5), "brand-bean"),
        ("POST", "/v1/withdrawals", {"member_id": mid, "amount": 5, "brand_transaction_id": "w"},
         "brand-bean"),
        ("POST", "/v1/conversions", conversion_body(mid, "bean", "sky", 100), "brand-bean"),
        ("POST", "/v1/gifts", gift, "brand-bean"),
        ("POST", "/v1/moves", {"member_id": mid, "to_brand": "sky", "amount": 5,
                               "brand_transaction_id": "m"}, "brand-bean"),
        ("PUT", "/v1/pair-policies/sky", policy, "brand-bean"),
        ("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/no-key"}, "brand-bean"),
        ("POST", "/v1/admin/operations/1/cancel", {"reason": "no key"}, "operator"),
        ("POST", "/v1/admin/operations/1/resubmit", {"reason": "no key"}, "operator"),
    ]  # fmt: skip


def test_every_write_without_a_key_is_refused_and_changes_nothing(
    api: Api, books: Books, ledger: ChainView
) -> None:
    member, other = api.funded_member("bean", 1_000), api.register_member("bean")
    operations_before, members_before = books.operation_count(), books.member_count()
    webhooks_before = api.get("/v1/webhooks").json()

    for method, path, body, client in _writes(member, other):
        response = api.http.request(method, path, json=body, headers=api.auth(client))
        assert_problem(response, 400, "idempotency_key_missing")

    assert books.operation_count() == operations_before
    assert books.member_count() == members_before
    assert api.get("/v1/webhooks").json() == webhooks_before
    assert ledger.balance("bean", member["address"]) == 1_000


@pytest.mark.parametrize(
    "key", ["k" * 129, "tab\tinside", ""], ids=["too-long", "control-character", "empty"]
)
def test_a_malformed_key_is_refused(api: Api, books: Books, key: str) -> None:
    member = api.register_member("bean")

    response = api.post(
        "/v1/deposits",
        deposit_body(member["id"], 5),
        send_key=False,
        headers={"Idempotency-Key": key},
    )

    assert_problem(response, 400, "idempotency_key_missing")
    assert books.operations_of(member["id"]) == []


def test_a_quote_needs_no_key_because_it_changes_nothing(api: Api, books: Books) -> None:
    member = api.funded_member("bean", 1_000)
    operations_before = books.operation_count()

    response = api.post(
        "/v1/quotes", conversion_body(member["id"], "bean", "sky", 100), send_key=False
    )

    assert response.status_code == 201, response.text
    assert books.operation_count() == operations_before


def _fire_together(count: int, send: Any) -> list[httpx.Response]:
    barrier = threading.Barrier(count)

    def one(_: int) -> httpx.Response:
        barrier.wait()
        return send()  # type: ignore[no-any-return]

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.parametrize("kind", ["deposit", "conversion"])
def test_concurrent_retries_with_one_key_make_exactly_one_operation(
    api: Api, books: Books, ledger: ChainView, kind: str
) -> None:
    member = api.funded_member("bean", 2_000)
    key = uuid.uuid4().hex
    if kind == "deposit":
        path, body = "/v1/deposits", deposit_body(member["id"], 250)
    else:
        path, body = "/v1/conversions", conversion_body(member["id"], "bean", "sky", 250)

    answers = _fire_together(CONCURRENT_RETRIES, lambda: api.post(path, body, key=key))

    assert {answer.status_code for answer in answers} <= {201, 202}, [a.text for a in answers]
    assert len({answer.json()["id"] for answer in answers}) == 1
    operation = api.wait_final(answers[0].json()["id"])
    assert operation["status"] == "confirmed", operation
    assert [op.kind for op in books.operations_of(member["id"])] == ["deposit", kind]
    expected_bean = 2_250 if kind == "deposit" else 1_750
    assert ledger.balance("bean", member["address"]) == expected_bean
