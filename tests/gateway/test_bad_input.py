"""Every bad request is refused with its documented problem and changes nothing.

One table of bad requests (amounts out of range or of the wrong type, unknown fields,
unknown brands, unknown or foreign members, malformed ids, a disabled pair, a frozen
member, the same brand on both sides, balances too small, ...). Each is sent over real HTTP
to the session gateway and must answer `application/problem+json` with the documented
status and `code` (docs/api.md, "Error codes"); then both books are compared with a
snapshot taken before: no operation or member was created, and no balance of any member
the table uses moved on chain. An expired quote is tested on a gateway restarted with a
short quote lifetime.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.gateway.api_client import Api, assert_problem, conversion_body, deposit_body
from tests.gateway.stack import Stack

QUOTE_TTL_S = 5
"""The lifetime of quotes on the gateway the expired-quote test restarts (the minimum)."""

UNKNOWN_MEMBER = "mbr_" + "0" * 24


@dataclass
class World:
    """Members the table refers to, each holding points, and a snapshot helper."""

    api: Api
    members: dict[str, dict[str, Any]]

    def id(self, name: str) -> str:
        return str(self.members[name]["id"])

    def quote_id(self, name: str) -> str:
        body = conversion_body(self.id(name), "bean", "sky", 100)
        response = self.api.post("/v1/quotes", body, "brand-bean")
        assert response.status_code == 201, response.text
        return str(response.json()["quote_id"])


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    api = stack.api
    stack.ensure_gateway()
    members = {
        "bean": api.funded_member("bean", 10_000),
        "rich": api.funded_member("bean", 100_000_000),
        "frozen": api.funded_member("bean", 10_000),
        "recipient": api.register_member("bean"),
        "sky": api.funded_member("sky", 10_000),
        "sky_other": api.register_member("sky"),
    }
    stack.ledger.freeze("bean", members["frozen"]["address"])
    return World(api, members)


@dataclass(frozen=True)
class Case:
    """One bad request and the problem it must get."""

    name: str
    path: str
    body: Callable[[World], Any]
    status: int
    code: str
    client: str = "brand-bean"
    method: str = "POST"


def _deposit(**fields: Any) -> Callable[[World], Any]:
    return lambda w: deposit_body(w.id("bean"), 100) | fields


def _convert(member: str, from_brand: str, to_brand: str, amount: int, **extra: Any) -> Any:
    return lambda w: conversion_body(w.id(member), from_brand, to_brand, amount, **extra)


def _gift(brand: str, sender: str, recipient: str, amount: int) -> Any:
    return lambda w: {
        "brand": brand,
        "from_member_id": w.id(sender),
        "to_member_id": w.id(recipient),
        "amount": amount,
    }


def _nothing(_: World) -> None:
    return None


SIGNATURE = "0x" + "11" * 65
"""Shaped like a signature (65 bytes), the signature of nobody."""


def _wallet_member(**wallet: Any) -> Callable[[World], Any]:
    proof = {"address": "0x" + "ab" * 20, "nonce": 0, "deadline": 2_000_000_000}
    return lambda w: {
        "brand_member_id": uuid.uuid4().hex,
        "wallet": proof | {"signature": SIGNATURE} | wallet,
    }


def _custody(**fields: Any) -> Callable[[World], Any]:
    body = {"enabled": True, "nonce": 0, "deadline": 2_000_000_000, "signature": SIGNATURE}
    return lambda w: body | fields


CASES = [
    # Amounts: positive JSON integers below 2**53, nothing else.
    Case("deposit-of-zero", "/v1/deposits", _deposit(amount=0), 422, "validation_failed"),
    Case("deposit-negative", "/v1/deposits", _deposit(amount=-5), 422, "validation_failed"),
    Case("deposit-of-2**53", "/v1/deposits", _deposit(amount=2**53), 422, "validation_failed"),
    Case("deposit-of-10**30", "/v1/deposits", _deposit(amount=10**30), 422, "validation_failed"),
    Case("deposit-amount-text", "/v1/deposits", _deposit(amount="lots"), 422, "validation_failed"),
    Case("deposit-amount-fraction", "/v1/deposits", _deposit(amount=1.5), 422, "validation_failed"),
    Case(
        "deposit-amount-whole-float",
        "/v1/deposits",
        _deposit(amount=100.0),
        422,
        "validation_failed",
    ),
    Case(
        "deposit-amount-numeric-text",
        "/v1/deposits",
        _deposit(amount="100"),
        422,
        "validation_failed",
    ),
    Case("deposit-amount-boolean", "/v1/deposits", _deposit(amount=True), 422, "validation_failed"),
    Case("deposit-amount-null", "/v1/deposits", _deposit(amount=None), 422, "validation_failed"),
    Case("deposit-amount-list", "/v1/deposits", _deposit(amount=[5]), 422, "validation_failed"),
    # Shapes: unknown or missing fields, bodies that are not objects.
    Case("deposit-unknown-field", "/v1/deposits", _deposit(colour="red"), 422, "validation_failed"),
    Case(
        "deposit-unknown-source",
        "/v1/deposits",
        _deposit(source="lottery"),
        422,
        "validation_failed",
    ),
    Case(
        "deposit-without-transaction-id",
        "/v1/deposits",
        lambda w: {"member_id": w.id("bean"), "amount": 5},
        422,
        "validation_failed",
    ),
    Case(
        "deposit-body-a-list",
        "/v1/deposits",
        lambda w: [deposit_body(w.id("bean"), 5)],
        422,
        "validation_failed",
    ),
    Case("deposit-body-null", "/v1/deposits", _nothing, 422, "validation_failed"),
    # Members: unknown, another brand's, malformed.
    Case(
        "deposit-unknown-member",
        "/v1/deposits",
        _deposit(member_id=UNKNOWN_MEMBER),
        404,
        "not_found",
    ),
    Case(
        "deposit-foreign-member",
        "/v1/deposits",
        lambda w: deposit_body(w.id("sky"), 5),
        404,
        "not_found",
    ),
    Case(
        "deposit-malformed-member-id",
        "/v1/deposits",
        _deposit(member_id="alice"),
        422,
        "validation_failed",
    ),
    Case(
        "conversion-foreign-member",
        "/v1/conversions",
        _convert("sky", "sky", "bean", 10),
        404,
        "not_found",
    ),
    Case(
        "member-already-registered",
        "/v1/members",
        lambda w: {"brand_member_id": w.members["bean"]["brand_member_id"]},
        409,
        "member_exists",
    ),
    Case(
        "member-id-with-space",
        "/v1/members",
        lambda w: {"brand_member_id": "a b"},
        422,
        "validation_failed",
    ),
    Case(
        "link-with-unknown-code",
        "/v1/members/link",
        lambda w: {"brand_member_id": uuid.uuid4().hex, "link_code": "x" * 24},
        422,
        "link_code_invalid",
    ),
    Case(
        "link-code-for-foreign-member",
        "/v1/members/{sky}/link-codes",
        lambda w: {},
        404,
        "not_found",
    ),
    # Brands and pairs.
    Case(
        "quote-unknown-brand",
        "/v1/quotes",
        _convert("bean", "bean", "zzz", 100),
        404,
        "unknown_brand",
    ),
    Case(
        "conversion-unknown-brand",
        "/v1/conversions",
        _convert("bean", "zzz", "sky", 100),
        404,
        "unknown_brand",
    ),
    Case(
        "conversion-same-brand",
        "/v1/conversions",
        _convert("bean", "bean", "bean", 100),
        422,
        "same_brand",
    ),
    Case(
        "quote-same-brand", "/v1/quotes", _convert("bean", "bean", "bean", 100), 422, "same_brand"
    ),
    Case(
        "conversion-disabled-pair",
        "/v1/conversions",
        _convert("sky", "sky", "cart", 1_000),
        422,
        "pair_disabled",
        client="brand-sky",
    ),
    Case(
        "quote-disabled-pair",
        "/v1/quotes",
        _convert("sky", "sky", "cart", 1_000),
        422,
        "pair_disabled",
        client="brand-sky",
    ),
    # Balances, limits and member state, as the chain would judge them.
    Case(
        "conversion-beyond-balance",
        "/v1/conversions",
        _convert("bean", "bean", "sky", 10_001),
        422,
        "insufficient_points",
    ),
    Case(
        "withdrawal-beyond-balance",
        "/v1/withdrawals",
        lambda w: {"member_id": w.id("bean"), "amount": 10_001, "brand_transaction_id": "w"},
        422,
        "insufficient_points",
    ),
    Case(
        "gift-beyond-balance",
        "/v1/gifts",
        _gift("bean", "bean", "recipient", 10_001),
        422,
        "insufficient_points",
    ),
    Case(
        "conversion-above-pair-maximum",
        "/v1/conversions",
        _convert("rich", "bean", "sky", 10_000_000),
        422,
        "above_maximum",
    ),
    Case(
        "conversion-below-member-minimum",
        "/v1/conversions",
        _convert("bean", "bean", "sky", 100, min_amount_out=10_000),
        422,
        "slippage_exceeded",
    ),
    Case(
        "conversion-of-frozen-member",
        "/v1/conversions",
        _convert("frozen", "bean", "sky", 100),
        422,
        "member_frozen",
    ),
    Case(
        "quote-of-frozen-member",
        "/v1/quotes",
        _convert("frozen", "bean", "sky", 100),
        422,
        "member_frozen",
    ),
    Case(
        "conversion-without-amount-or-quote",
        "/v1/conversions",
        lambda w: {"member_id": w.id("bean")},
        422,
        "invalid_amount",
    ),
    Case(
        "conversion-with-unknown-quote",
        "/v1/conversions",
        lambda w: {"member_id": w.id("bean"), "quote_id": "not-a-quote"},
        404,
        "not_found",
    ),
    Case(
        "conversion-with-another-members-quote",
        "/v1/conversions",
        lambda w: {"member_id": w.id("recipient"), "quote_id": w.quote_id("bean")},
        404,
        "not_found",
    ),
    # Signed conversions (a self-custody member's; docs/api.md, "Signed conversions").
    Case(
        "signed-conversion-without-quote",
        "/v1/conversions",
        lambda w: conversion_body(w.id("bean"), "bean", "sky", 100, signature=SIGNATURE),
        422,
        "quote_required",
    ),
    Case(
        "signed-conversion-with-a-quote-that-reserved-nothing",
        "/v1/conversions",
        lambda w: {
            "member_id": w.id("bean"),
            "quote_id": w.quote_id("bean"),
            "signature": SIGNATURE,
        },
        422,
        "quote_required",
    ),
    Case(
        "signed-conversion-with-unknown-quote",
        "/v1/conversions",
        lambda w: {"member_id": w.id("bean"), "quote_id": "not-a-quote", "signature": SIGNATURE},
        404,
        "not_found",
    ),
    Case(
        "signed-conversion-of-unknown-member",
        "/v1/conversions",
        lambda w: {
            "member_id": UNKNOWN_MEMBER,
            "quote_id": w.quote_id("bean"),
            "signature": SIGNATURE,
        },
        404,
        "not_found",
    ),
    Case(
        "signed-conversion-signature-short",
        "/v1/conversions",
        lambda w: {"member_id": w.id("bean"), "quote_id": w.quote_id("bean"), "signature": "0x12"},
        422,
        "validation_failed",
    ),
    # Gifts.
    Case(
        "gift-where-gifting-is-off",
        "/v1/gifts",
        _gift("sky", "sky", "sky_other", 1),
        422,
        "gifting_disabled",
        client="brand-sky",
    ),
    Case(
        "gift-of-another-brands-points",
        "/v1/gifts",
        _gift("sky", "bean", "recipient", 1),
        403,
        "forbidden",
    ),
    # Paths.
    Case(
        "operation-id-not-a-number",
        "/v1/operations/abc",
        _nothing,
        422,
        "validation_failed",
        method="GET",
    ),
    Case(
        "operation-id-beyond-64-bits",
        "/v1/operations/99999999999999999999",
        _nothing,
        404,
        "not_found",
        method="GET",
    ),
    Case(
        "operation-id-beyond-32-bits",
        "/v1/operations/2147483648",
        _nothing,
        404,
        "not_found",
        method="GET",
    ),
    Case("operation-id-negative", "/v1/operations/-1", _nothing, 404, "not_found", method="GET"),
    Case(
        "admin-action-id-beyond-64-bits",
        "/v1/admin/actions/99999999999999999999",
        _nothing,
        404,
        "not_found",
        client="operator",
        method="GET",
    ),
    Case(
        "admin-cancel-id-beyond-64-bits",
        "/v1/admin/operations/99999999999999999999/cancel",
        lambda w: {"reason": "bad input"},
        404,
        "not_found",
        client="operator",
    ),
    Case(
        "admin-resubmit-id-beyond-32-bits",
        "/v1/admin/operations/2147483648/resubmit",
        lambda w: {"reason": "bad input"},
        404,
        "not_found",
        client="operator",
    ),
    Case(
        "admin-stuck-age-beyond-any-date",
        "/v1/admin/operations/stuck?older_than_s=1e308",
        _nothing,
        422,
        "validation_failed",
        client="operator",
        method="GET",
    ),
    Case(
        "history-cursor-not-a-number",
        "/v1/members/{bean}/history?cursor=abc",
        _nothing,
        422,
        "validation_failed",
        method="GET",
    ),
    Case("member-id-malformed", "/v1/members/alice", _nothing, 404, "not_found", method="GET"),
    # Self-custody: wallet proofs and custody changes (docs/api.md, "Self-custody").
    Case(
        "wallet-address-short",
        "/v1/members",
        _wallet_member(address="0x1234"),
        422,
        "validation_failed",
    ),
    Case(
        "wallet-address-not-hex",
        "/v1/members",
        _wallet_member(address="0x" + "zz" * 20),
        422,
        "validation_failed",
    ),
    Case(
        "wallet-nonce-negative", "/v1/members", _wallet_member(nonce=-1), 422, "validation_failed"
    ),
    Case("wallet-nonce-text", "/v1/members", _wallet_member(nonce="0"), 422, "validation_failed"),
    Case(
        "wallet-deadline-fraction",
        "/v1/members",
        _wallet_member(deadline=1.5),
        422,
        "validation_failed",
    ),
    Case(
        "wallet-deadline-huge",
        "/v1/members",
        _wallet_member(deadline=10**30),
        422,
        "validation_failed",
    ),
    Case(
        "wallet-signature-short",
        "/v1/members",
        _wallet_member(signature="0x1234"),
        422,
        "validation_failed",
    ),
    Case(
        "wallet-unknown-field",
        "/v1/members",
        _wallet_member(enabled=False),
        422,
        "validation_failed",
    ),
    Case(
        "wallet-signature-of-nobody",
        "/v1/members",
        _wallet_member(),
        422,
        "invalid_signature",
    ),
    Case(
        "custody-enabled-text",
        "/v1/members/{bean}/custody",
        _custody(enabled="true"),
        422,
        "validation_failed",
    ),
    Case(
        "custody-without-signature",
        "/v1/members/{bean}/custody",
        lambda w: {"enabled": True, "nonce": 0, "deadline": 2_000_000_000},
        422,
        "validation_failed",
    ),
    Case(
        "custody-of-unknown-member",
        f"/v1/members/{UNKNOWN_MEMBER}/custody",
        _custody(),
        404,
        "not_found",
    ),
    Case(
        "custody-of-another-brands-member",
        "/v1/members/{sky}/custody",
        _custody(),
        404,
        "not_found",
    ),
    Case(
        "custody-of-a-custodial-member",
        "/v1/members/{bean}/custody",
        _custody(),
        422,
        "wallet_required",
    ),
    Case(
        "custody-message-address-malformed",
        "/v1/members/custody-message?address=0x12",
        _nothing,
        422,
        "validation_failed",
        method="GET",
    ),
    Case(
        "custody-message-deadline-negative",
        "/v1/members/custody-message?address=0x" + "ab" * 20 + "&deadline=-1",
        _nothing,
        422,
        "validation_failed",
        method="GET",
    ),
    Case(
        "custody-message-enabled-not-boolean",
        "/v1/members/custody-message?address=0x" + "ab" * 20 + "&enabled=perhaps",
        _nothing,
        422,
        "validation_failed",
        method="GET",
    ),
    Case("unknown-route", "/v1/nothing-here", _nothing, 404, "not_found", method="GET"),
    Case("wrong-method", "/v1/deposits", _nothing, 405, "method_not_allowed", method="GET"),
]


def _snapshot(stack: Stack, world: World) -> tuple[int, int, dict[str, dict[str, int]]]:
    balances = {
        name: stack.ledger.balances(member["address"]) for name, member in world.members.items()
    }
    return stack.books.operation_count(), stack.books.member_count(), balances


def _send(world: World, case: Case) -> Any:
    path = case.path.replace("{sky}", world.id("sky")).replace("{bean}", world.id("bean"))
    if case.method == "GET":
        return world.api.get(path, case.client)
    return world.api.post(path, case.body(world), case.client)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_bad_request_gets_its_problem_and_changes_nothing(
    stack: Stack, world: World, case: Case
) -> None:
    stack.ensure_gateway()
    before = _snapshot(stack, world)

    response = _send(world, case)

    assert_problem(response, case.status, case.code)
    assert _snapshot(stack, world) == before


@pytest.mark.parametrize(
    "content", [b"amount=5", b'{"member_id": ', b"\xff\xfe"], ids=["form", "truncated", "binary"]
)
def test_a_body_that_is_not_json_gets_a_validation_problem(
    stack: Stack, world: World, content: bytes
) -> None:
    stack.ensure_gateway()
    before = _snapshot(stack, world)
    headers = world.api.auth("brand-bean") | {
        "Content-Type": "application/json",
        "Idempotency-Key": uuid.uuid4().hex,
    }

    response = world.api.http.post("/v1/deposits", content=content, headers=headers)

    assert_problem(response, 422, "validation_failed")
    assert _snapshot(stack, world) == before


@pytest.fixture
def short_quotes(stack: Stack) -> Iterator[Stack]:
    """The session gateway restarted with a quote lifetime of QUOTE_TTL_S, then restored."""
    stack.gateway.restart(stack.gateway_env | {"ALLIANCE_GATEWAY_QUOTE_TTL_S": str(QUOTE_TTL_S)})
    try:
        yield stack
    finally:
        stack.gateway.restart(stack.gateway_env)


@pytest.mark.parametrize(
    "path",
    ["/v1/members/{bean}/history?cursor=999999999999999999", "/v1/alerts?cursor=60555523524"],
    ids=["history", "alerts"],
)
def test_a_cursor_beyond_every_id_reads_from_the_newest(
    stack: Stack, world: World, path: str
) -> None:
    # Ids are 32-bit: PostgreSQL refused the bound cursor with a 500 before (schemathesis).
    stack.ensure_gateway()
    response = world.api.get(path.replace("{bean}", world.id("bean")), "brand-bean")

    assert response.status_code == 200, response.text
    assert isinstance(response.json()["items"], list)


def test_a_conversion_with_an_expired_quote_is_refused_and_changes_nothing(
    short_quotes: Stack, world: World
) -> None:
    api = short_quotes.api
    quote = api.post("/v1/quotes", conversion_body(world.id("bean"), "bean", "sky", 100))
    assert quote.status_code == 201, quote.text
    time.sleep(QUOTE_TTL_S + 1.5)
    before = _snapshot(short_quotes, world)

    response = api.post(
        "/v1/conversions", {"member_id": world.id("bean"), "quote_id": quote.json()["quote_id"]}
    )

    assert_problem(response, 422, "quote_expired")
    assert _snapshot(short_quotes, world) == before
