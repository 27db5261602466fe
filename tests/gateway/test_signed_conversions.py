"""A self-custody member converts end to end by signing the conversion their quote reserved,
and every refusal changes nothing (docs/api.md, "Signed conversions").

Real parts: the session stack's Anvil, gateway process and database, and a webhook receiver
listening on a local port. The member's wallet is a fresh eth_account key registered with
the gateway (custody `self` on chain); it signs the EIP-712 typed data the quote hands out.
The tests check what the HTTP answers claim against the chain (`Converted` with the quote's
request id, balances), the gateway's books (operation count, request ids) and the webhooks
both brands receive; the recovery matcher settles a signed conversion from chain state by
its reserved request id.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from eth_account.signers.local import LocalAccount

from alliance.db.models import Operation, OperationKind
from gateway.ledger import Ledger
from gateway.pipeline.recovery import outcome_on_chain
from tests.gateway.api_client import Api, assert_problem
from tests.gateway.stack import Books, ChainView
from tests.gateway.wallets import (
    register_wallet_member,
    signable_quote,
    signed_conversion,
    signed_custody,
)

RESERVED_REQUEST_ID_BASE = 2**62
WEBHOOK_TIMEOUT_S = 30.0


def _funded_wallet_member(api: Api, amount: int = 5_000) -> tuple[dict[str, Any], LocalAccount]:
    member, wallet = register_wallet_member(api)
    deposit = api.wait_final(api.deposit(member["id"], amount)["id"])
    assert deposit["status"] == "confirmed", deposit
    return member, wallet


def _link_at_sky(api: Api, member: dict[str, Any]) -> None:
    code = api.post(f"/v1/members/{member['id']}/link-codes", {}).json()["link_code"]
    body = {"brand_member_id": uuid.uuid4().hex, "link_code": code}
    assert api.post("/v1/members/link", body, "brand-sky").status_code == 200


class _Receiver:
    """A webhook endpoint on a local port that keeps every event it is sent."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        events = self.events

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                events.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def confirmed(self, operation_id: int, brands: set[str]) -> dict[str, dict[str, Any]]:
        """The `operation.confirmed` events of `operation_id`, by subscriber brand, once
        every brand in `brands` has one."""
        deadline = time.monotonic() + WEBHOOK_TIMEOUT_S
        while True:
            found = {
                event["brand"]: event
                for event in list(self.events)
                if event["type"] == "operation.confirmed" and event["data"]["id"] == operation_id
            }
            if set(found) >= brands or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(api: Api) -> Iterator[_Receiver]:
    """A receiver subscribed for bean and sky; unsubscribed afterwards."""
    receiver = _Receiver()
    subscriptions = []
    for client in ("brand-bean", "brand-sky"):
        response = api.post("/v1/webhooks", {"url": receiver.url}, client)
        assert response.status_code == 201, response.text
        subscriptions.append((client, response.json()["id"]))
    yield receiver
    for client, subscription in subscriptions:
        api.http.delete(f"/v1/webhooks/{subscription}", headers=api.auth(client))
    receiver.close()


# --- the quote -----------------------------------------------------------------------------


def test_a_self_custody_quote_reserves_a_request_id_and_hands_out_its_typed_data(
    api: Api, ledger: ChainView
) -> None:
    member, wallet = register_wallet_member(api)

    quote = signable_quote(api, member["id"], 1_000, slippage_bps=100)
    another = signable_quote(api, member["id"], 1_000, slippage_bps=100)

    request_id = int(quote["request_id"])
    assert request_id >= RESERVED_REQUEST_ID_BASE
    assert int(another["request_id"]) != request_id
    typed = quote["typed_data"]
    assert typed["primaryType"] == "Conversion"
    assert typed["domain"] == {
        "name": "AllianceExchange",
        "version": "1",
        "chainId": ledger.deployment.manifest.chain_id,
        "verifyingContract": ledger.exchange.address,
    }
    expires_at = int(datetime.fromisoformat(quote["expires_at"]).timestamp())
    assert typed["message"] == {
        "requestId": quote["request_id"],  # a string: beyond a JavaScript number
        "member": wallet.address,
        "fromToken": ledger.tokens["bean"].address,
        "toToken": ledger.tokens["sky"].address,
        "amountIn": 1_000,
        "minAmountOut": quote["min_amount_out"],
        "deadline": expires_at,
    }
    assert quote["min_amount_out"] < quote["amount_out"]


def test_a_custodial_members_quote_has_nothing_to_sign(api: Api) -> None:
    member = api.funded_member()
    body = {"member_id": member["id"], "from_brand": "bean", "to_brand": "sky", "amount_in": 100}

    quote = api.post("/v1/quotes", body).json()

    assert (quote["request_id"], quote["typed_data"]) == (None, None)


# --- success -------------------------------------------------------------------------------


def test_a_signed_conversion_applies_on_chain_and_reads_as_any_conversion(
    api: Api, ledger: ChainView, books: Books, receiver: _Receiver
) -> None:
    member, wallet = _funded_wallet_member(api)
    quote = signable_quote(api, member["id"], 1_000)

    response = api.post("/v1/conversions", signed_conversion(member["id"], quote, wallet))

    assert response.status_code == 201, response.text
    operation = response.json()
    assert (operation["kind"], operation["status"], operation["member_id"]) == (
        "conversion",
        "confirmed",
        member["id"],
    )
    assert operation["request_id"] == quote["request_id"]
    assert operation["result"]["amount_out"] == str(quote["amount_out"])
    events = ledger.conversions(wallet.address)
    assert [event["args"]["requestId"] for event in events] == [int(quote["request_id"])]
    assert (events[0]["args"]["amountIn"], events[0]["args"]["amountOut"]) == (
        1_000,
        quote["amount_out"],
    )
    assert ledger.balance("bean", wallet.address) == 4_000
    assert ledger.balance("sky", wallet.address) == quote["amount_out"]
    [row] = [row for row in books.operations_of(member["id"]) if row.kind == "conversion"]
    assert row.request_id == int(quote["request_id"])
    history = api.get(f"/v1/members/{member['id']}/history").json()["items"]
    assert history[0]["id"] == operation["id"]
    delivered = receiver.confirmed(operation["id"], {"bean", "sky"})
    assert set(delivered) == {"bean", "sky"}, receiver.events
    assert delivered["bean"]["data"]["request_id"] == quote["request_id"]
    assert delivered["sky"]["data"]["member_id"] is None  # not linked at sky


def test_a_member_who_handed_custody_back_can_still_sign_a_quote_made_while_self(
    api: Api, ledger: ChainView
) -> None:
    member, wallet = _funded_wallet_member(api)
    quote = signable_quote(api, member["id"], 500)
    body = {"enabled": False, **signed_custody(api, wallet, False)}
    handed_back = api.post(f"/v1/members/{member['id']}/custody", body)
    assert handed_back.status_code == 201, handed_back.text

    unsigned = api.post(
        "/v1/conversions", {"member_id": member["id"], "quote_id": quote["quote_id"]}
    )
    signed = api.post("/v1/conversions", signed_conversion(member["id"], quote, wallet))

    assert_problem(unsigned, 422, "signature_required")
    assert signed.status_code == 201, signed.text
    assert len(ledger.conversions(wallet.address)) == 1


# --- idempotency and one conversion per quote ----------------------------------------------


def test_a_signed_conversion_replayed_answers_the_first_result_and_a_quote_converts_once(
    api: Api, ledger: ChainView, books: Books
) -> None:
    member, wallet = _funded_wallet_member(api)
    quote = signable_quote(api, member["id"], 1_000)
    body, key = signed_conversion(member["id"], quote, wallet), uuid.uuid4().hex
    first = api.post("/v1/conversions", body, key=key)
    assert first.status_code == 201, first.text
    operations_before = books.operation_count()

    replayed = api.post("/v1/conversions", body, key=key)
    second = api.post("/v1/conversions", body)  # the same quote under a new key

    assert replayed.status_code == 201, replayed.text
    assert replayed.json() == first.json()
    problem = assert_problem(second, 409, "quote_used")
    assert problem["operation_id"] == first.json()["id"]
    assert books.operation_count() == operations_before
    assert len(ledger.conversions(wallet.address)) == 1
    assert ledger.balance("bean", wallet.address) == 4_000


def test_two_requests_racing_for_one_quote_convert_it_once(
    api: Api, ledger: ChainView, books: Books
) -> None:
    member, wallet = _funded_wallet_member(api)
    quote = signable_quote(api, member["id"], 1_000)
    body = signed_conversion(member["id"], quote, wallet)

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: api.post("/v1/conversions", body), range(4)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 409, 409, 409], [response.text for response in responses]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "quote_used")
    assert len(ledger.conversions(wallet.address)) == 1
    rows = [row for row in books.operations_of(member["id"]) if row.kind == "conversion"]
    assert [row.request_id for row in rows] == [int(quote["request_id"])]


# --- refusals change nothing ---------------------------------------------------------------


def _expired(api: Api, quote: dict[str, Any]) -> dict[str, Any]:
    """`quote` as the gateway would have issued it a minute ago, now expired."""
    claims = jwt.decode(quote["quote_id"], options={"verify_signature": False})
    claims["exp"] = claims["expires_at"] = int(time.time()) - 60
    forged = jwt.encode(claims, api.token_key(), algorithm="HS256")
    return {**quote, "quote_id": forged}


def test_a_signed_conversion_is_refused_before_anything_is_recorded(
    api: Api, ledger: ChainView, books: Books
) -> None:
    member, wallet = _funded_wallet_member(api, 2_000)
    other, other_wallet = _funded_wallet_member(api)
    quote = signable_quote(api, member["id"], 1_000)
    custodial = api.funded_member()
    custodial_quote = api.post(
        "/v1/quotes",
        {"member_id": custodial["id"], "from_brand": "bean", "to_brand": "sky", "amount_in": 10},
    ).json()
    too_much = signable_quote(api, member["id"], 3_000)
    mine = signed_conversion(member["id"], quote, wallet)
    cases = [
        # Signed by another key, or over other terms than the quote's.
        (signed_conversion(member["id"], quote, other_wallet), 422, "invalid_signature"),
        (signed_conversion(member["id"], quote, wallet, amountIn=999), 422, "invalid_signature"),
        ({**mine, "signature": "0x" + "11" * 64 + "1b"}, 422, "invalid_signature"),
        # Another member's quote, whoever signs it.
        ({**signed_conversion(other["id"], quote, other_wallet)}, 404, "not_found"),
        ({**mine, "quote_id": "not-a-quote"}, 404, "not_found"),
        # No quote, or one with nothing reserved to sign.
        ({k: v for k, v in mine.items() if k != "quote_id"}, 422, "quote_required"),
        (
            {**mine, "member_id": custodial["id"], "quote_id": custodial_quote["quote_id"]},
            422,
            "quote_required",
        ),
        (signed_conversion(member["id"], _expired(api, quote), wallet), 422, "quote_expired"),
        # The chain would refuse it: more points than the member holds.
        (signed_conversion(member["id"], too_much, wallet), 422, "insufficient_points"),
        # A reserved quote is accepted only with its signature.
        ({"member_id": member["id"], "quote_id": quote["quote_id"]}, 422, "signature_required"),
    ]
    operations_before = books.operation_count()

    for body, status, code in cases:
        assert_problem(api.post("/v1/conversions", body), status, code)

    assert books.operation_count() == operations_before
    assert ledger.conversions(wallet.address) == []
    assert ledger.balance("bean", wallet.address) == 2_000
    accepted = api.post("/v1/conversions", mine)  # the genuine request still goes through
    assert accepted.status_code == 201, accepted.text


def test_a_quote_made_at_one_brand_is_unknown_at_another(api: Api, books: Books) -> None:
    member, wallet = _funded_wallet_member(api)
    _link_at_sky(api, member)
    quote = signable_quote(api, member["id"], 1_000)
    operations_before = books.operation_count()

    response = api.post(
        "/v1/conversions", signed_conversion(member["id"], quote, wallet), "brand-sky"
    )

    assert_problem(response, 404, "not_found")
    assert books.operation_count() == operations_before


# --- recovery matches a signed conversion by its reserved request id -----------------------


def test_recovery_settles_a_signed_conversion_from_its_reserved_request_id(
    api: Api, ledger: ChainView
) -> None:
    member, wallet = _funded_wallet_member(api)
    quote = signable_quote(api, member["id"], 1_000)
    unused = signable_quote(api, member["id"], 1_000)
    confirmed = api.post("/v1/conversions", signed_conversion(member["id"], quote, wallet)).json()
    chain_view = Ledger.from_deployment(ledger.deployment, ledger.keys.account)

    def operation(request_id: str) -> Operation:
        return Operation(
            kind=OperationKind.CONVERSION, brand_code="bean", request_id=int(request_id), params={}
        )

    applied = outcome_on_chain(chain_view, operation(quote["request_id"]))
    not_yet = outcome_on_chain(chain_view, operation(unused["request_id"]))

    assert applied is not None and applied.confirmed
    assert applied.result is not None
    assert applied.result["tx_hash"] == confirmed["result"]["tx_hash"]
    assert applied.result["amount_out"] == confirmed["result"]["amount_out"]
    assert not_yet is None
