"""Self-custody by wallet signature works end to end, and every refusal changes nothing
(docs/api.md, "Self-custody").

Real parts: the session stack's Anvil, gateway process and database. A member's wallet is a
fresh eth_account key that signs the EIP-712 typed data the gateway hands out; the tests
check what the HTTP answers claim against the chain (`isSelfCustodied`, `nonces`,
`SelfCustodySet` events, balances) and the gateway's own books, and follow the effects
through: member reads, deposits, custodial conversions and moves (refused while `self`,
allowed once handed back), linking at a second brand, and the recovery matcher that settles
a custody change from chain state alone. Signed conversions: test_signed_conversions.py.
"""

from __future__ import annotations

import uuid
from typing import Any

from eth_account.signers.local import LocalAccount

from alliance.db.models import Operation, OperationKind
from gateway.ledger import Ledger
from gateway.pipeline.recovery import outcome_on_chain
from tests.gateway.api_client import Api, assert_problem, conversion_body
from tests.gateway.stack import Books, ChainView
from tests.gateway.wallets import (
    custody_message,
    expired_deadline,
    new_wallet,
    register_wallet_member,
    signed_custody,
    wallet_registration,
)


def _is_self_custodied(ledger: ChainView, address: str) -> bool:
    return bool(ledger.exchange.functions.isSelfCustodied(address).call())


def _nonce(ledger: ChainView, address: str) -> int:
    return int(ledger.exchange.functions.nonces(address).call())


def _custody_logs(ledger: ChainView, address: str) -> list[Any]:
    event = ledger.exchange.events.SelfCustodySet()
    return list(event.get_logs(argument_filters={"member": address}, from_block=ledger.from_block))


def _link_at_sky(api: Api, member: dict[str, Any]) -> Any:
    code = api.post(f"/v1/members/{member['id']}/link-codes", {}).json()["link_code"]
    body = {"brand_member_id": uuid.uuid4().hex, "link_code": code}
    return api.post("/v1/members/link", body, "brand-sky")


def _switch(api: Api, member: dict[str, Any], wallet: LocalAccount, enabled: bool) -> Any:
    body = {"enabled": enabled, **signed_custody(api, wallet, enabled)}
    return api.post(f"/v1/members/{member['id']}/custody", body)


# --- the message ---------------------------------------------------------------------------


def test_the_custody_message_is_typed_data_with_the_wallets_next_nonce(
    api: Api, ledger: ChainView
) -> None:
    wallet = new_wallet()

    message = custody_message(api, wallet.address.lower(), enabled=False, deadline=1_900_000_000)

    typed = message["typed_data"]
    assert message["address"] == wallet.address  # checksummed
    assert (message["nonce"], message["deadline"], message["enabled"]) == (0, 1_900_000_000, False)
    assert typed["primaryType"] == "SelfCustody"
    assert typed["domain"] == {
        "name": "AllianceExchange",
        "version": "1",
        "chainId": ledger.deployment.manifest.chain_id,
        "verifyingContract": ledger.exchange.address,
    }
    assert typed["message"] == {
        "member": wallet.address,
        "enabled": False,
        "nonce": 0,
        "deadline": 1_900_000_000,
    }


# --- registration with a wallet ------------------------------------------------------------


def test_a_member_registers_with_a_wallet_and_becomes_self_custody_on_chain(
    api: Api, ledger: ChainView, books: Books
) -> None:
    wallet = new_wallet()
    body = wallet_registration(api, wallet)

    response = api.post("/v1/members", body)

    assert response.status_code == 201, response.text
    member = response.json()
    assert member["address"] == wallet.address
    assert (member["custody"], member["wallet"], member["brands"]) == ("self", True, ["bean"])
    operation = api.wait_final(member["custody_operation_id"], "brand-bean")
    assert (operation["kind"], operation["status"], operation["brand"]) == (
        "custody",
        "confirmed",
        "bean",
    )
    assert operation["member_id"] == member["id"]
    assert operation["params"] == {"enabled": True}
    assert operation["result"]["enabled"] is True
    assert _is_self_custodied(ledger, wallet.address)
    assert _nonce(ledger, wallet.address) == 1
    logs = _custody_logs(ledger, wallet.address)
    assert [log["args"]["enabled"] for log in logs] == [True]
    assert logs[0]["transactionHash"].to_0x_hex() == operation["result"]["tx_hash"]
    read = api.get(f"/v1/members/{member['id']}").json()
    assert (read["custody"], read["wallet"]) == ("self", True)
    history = api.get(f"/v1/members/{member['id']}/history").json()["items"]
    assert [item["id"] for item in history] == [operation["id"]]
    assert [row.kind for row in books.operations_of(member["id"])] == ["custody"]


def test_a_wallet_registration_replayed_answers_the_same_member_after_its_nonce_is_used(
    api: Api, books: Books
) -> None:
    body, key = wallet_registration(api, new_wallet()), uuid.uuid4().hex
    first = api.post("/v1/members", body, key=key)
    assert first.status_code == 201, first.text
    api.wait_final(first.json()["custody_operation_id"])
    members_before = books.member_count()

    again = api.post("/v1/members", body, key=key)

    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert books.member_count() == members_before


def test_a_custodial_member_keeps_a_gateway_derived_address(api: Api) -> None:
    member = api.register_member("bean")

    assert (member["custody"], member["wallet"], member["custody_operation_id"]) == (
        "custodial",
        False,
        None,
    )


# --- refusals change nothing ---------------------------------------------------------------


def _assert_registration_refused(
    api: Api, books: Books, ledger: ChainView, body: dict[str, Any], status: int, code: str
) -> None:
    members_before, operations_before = books.member_count(), books.operation_count()
    nonce_before = _nonce(ledger, body["wallet"]["address"])

    response = api.post("/v1/members", body)

    assert_problem(response, status, code)
    assert books.member_count() == members_before
    assert books.operation_count() == operations_before
    assert _nonce(ledger, body["wallet"]["address"]) == nonce_before


def test_a_registration_signed_by_another_key_is_refused(
    api: Api, books: Books, ledger: ChainView
) -> None:
    body = wallet_registration(api, new_wallet(), signer=new_wallet())

    _assert_registration_refused(api, books, ledger, body, 422, "invalid_signature")


def test_a_registration_whose_signature_does_not_cover_its_fields_is_refused(
    api: Api, books: Books, ledger: ChainView
) -> None:
    body = wallet_registration(api, new_wallet())
    body["wallet"]["deadline"] += 1  # the signed deadline was another

    _assert_registration_refused(api, books, ledger, body, 422, "invalid_signature")


def test_a_registration_with_a_malformed_signature_is_refused(
    api: Api, books: Books, ledger: ChainView
) -> None:
    body = wallet_registration(api, new_wallet())
    body["wallet"]["signature"] = "0x" + "00" * 65

    _assert_registration_refused(api, books, ledger, body, 422, "invalid_signature")


def test_an_expired_registration_signature_is_refused(
    api: Api, books: Books, ledger: ChainView
) -> None:
    body = wallet_registration(api, new_wallet(), deadline=expired_deadline())

    _assert_registration_refused(api, books, ledger, body, 422, "signature_expired")


def test_a_registration_signed_with_another_nonce_is_refused(
    api: Api, books: Books, ledger: ChainView
) -> None:
    body = wallet_registration(api, new_wallet(), nonce=1)

    _assert_registration_refused(api, books, ledger, body, 422, "invalid_nonce")


def test_a_wallet_that_is_already_a_member_cannot_register_again(
    api: Api, books: Books, ledger: ChainView
) -> None:
    _, wallet = register_wallet_member(api)
    body = wallet_registration(api, wallet)  # a genuine signature with the wallet's new nonce

    _assert_registration_refused(api, books, ledger, body, 409, "address_taken")
    other_brand = api.post("/v1/members", wallet_registration(api, wallet), "brand-sky")
    assert_problem(other_brand, 409, "address_taken")


def test_a_brand_member_id_already_registered_is_refused_with_a_wallet_too(
    api: Api, books: Books, ledger: ChainView
) -> None:
    existing = api.register_member("bean")
    body = wallet_registration(api, new_wallet())
    body["brand_member_id"] = existing["brand_member_id"]

    _assert_registration_refused(api, books, ledger, body, 409, "member_exists")


# --- effects: reads, deposits, conversions, moves, links -----------------------------------


def test_a_self_custody_member_is_credited_and_read_but_never_moved_without_signing(
    api: Api, ledger: ChainView
) -> None:
    member, _ = register_wallet_member(api)
    assert _link_at_sky(api, member).status_code == 200  # a move needs both brands
    deposit = api.wait_final(api.deposit(member["id"], 5_000)["id"])
    assert deposit["status"] == "confirmed", deposit

    conversion = api.post("/v1/conversions", conversion_body(member["id"], "bean", "sky", 1_000))
    move = api.post(
        "/v1/moves",
        {"member_id": member["id"], "to_brand": "sky", "amount": 100, "brand_transaction_id": "m1"},
    )
    balances = api.get(f"/v1/members/{member['id']}/balances")

    assert_problem(conversion, 422, "signature_required")
    assert_problem(move, 422, "signature_required")
    assert balances.status_code == 200, balances.text
    by_brand = {entry["brand"]: entry["balance"] for entry in balances.json()["balances"]}
    assert by_brand["bean"] == 5_000 == ledger.balance("bean", member["address"])
    assert ledger.conversions(member["address"]) == []


def test_a_wallet_member_hands_custody_back_and_takes_it_again(api: Api, ledger: ChainView) -> None:
    member, wallet = register_wallet_member(api)
    api.wait_final(api.deposit(member["id"], 3_000)["id"])
    refused = api.post("/v1/conversions", conversion_body(member["id"], "bean", "sky", 100))
    assert_problem(refused, 422, "signature_required")  # the member is now in the cache

    handed_back = _switch(api, member, wallet, enabled=False)

    assert handed_back.status_code == 201, handed_back.text
    operation = handed_back.json()
    assert (operation["kind"], operation["status"], operation["params"]) == (
        "custody",
        "confirmed",
        {"enabled": False},
    )
    assert not _is_self_custodied(ledger, wallet.address)
    assert api.get(f"/v1/members/{member['id']}").json()["custody"] == "custodial"
    converted = api.post("/v1/conversions", conversion_body(member["id"], "bean", "sky", 1_000))
    assert converted.status_code == 201, converted.text
    assert len(ledger.conversions(member["address"])) == 1

    taken_again = _switch(api, member, wallet, enabled=True)

    assert taken_again.status_code == 201, taken_again.text
    assert _is_self_custodied(ledger, wallet.address)
    assert [log["args"]["enabled"] for log in _custody_logs(ledger, wallet.address)] == [
        True,
        False,
        True,
    ]
    refused_again = api.post("/v1/conversions", conversion_body(member["id"], "bean", "sky", 100))
    assert_problem(refused_again, 422, "signature_required")
    assert len(ledger.conversions(member["address"])) == 1
    kinds = [
        item["kind"] for item in api.get(f"/v1/members/{member['id']}/history").json()["items"]
    ]
    assert kinds == ["custody", "conversion", "custody", "deposit", "custody"]


def test_a_wallet_member_is_linked_at_a_second_brand_with_its_custody(api: Api) -> None:
    member, wallet = register_wallet_member(api)

    linked = _link_at_sky(api, member)

    assert linked.status_code == 200, linked.text
    seen_by_sky = linked.json()
    assert (seen_by_sky["id"], seen_by_sky["address"]) == (member["id"], wallet.address)
    assert (seen_by_sky["custody"], seen_by_sky["wallet"]) == ("self", True)
    assert seen_by_sky["brands"] == ["bean", "sky"]
    # Sky may now change the member's custody too: the member is its customer there.
    handed_back = api.post(
        f"/v1/members/{member['id']}/custody",
        {"enabled": False, **signed_custody(api, wallet, False)},
        "brand-sky",
    )
    assert handed_back.status_code == 201, handed_back.text


# --- custody change refusals ---------------------------------------------------------------


def test_a_custody_change_is_refused_for_a_gateway_derived_address(api: Api, books: Books) -> None:
    member = api.register_member("bean")
    operations_before = books.operation_count()
    body = {"enabled": True, **signed_custody(api, new_wallet(), True)}

    response = api.post(f"/v1/members/{member['id']}/custody", body)

    assert_problem(response, 422, "wallet_required")
    assert books.operation_count() == operations_before


def test_a_custody_change_to_the_current_custody_is_refused(api: Api, books: Books) -> None:
    member, wallet = register_wallet_member(api)
    operations_before = books.operation_count()

    response = _switch(api, member, wallet, enabled=True)

    assert_problem(response, 409, "custody_unchanged")
    assert books.operation_count() == operations_before


def test_a_custody_change_signed_badly_changes_nothing(
    api: Api, books: Books, ledger: ChainView
) -> None:
    member, wallet = register_wallet_member(api)
    path = f"/v1/members/{member['id']}/custody"
    cases = [
        (
            {"enabled": False, **signed_custody(api, wallet, False, signer=new_wallet())},
            "invalid_signature",
        ),
        # Signed for enabled=true, sent as enabled=false.
        ({**signed_custody(api, wallet, True), "enabled": False}, "invalid_signature"),
        (
            {"enabled": False, **signed_custody(api, wallet, False, deadline=expired_deadline())},
            "signature_expired",
        ),
        ({"enabled": False, **signed_custody(api, wallet, False, nonce=0)}, "invalid_nonce"),
    ]
    operations_before = books.operation_count()

    for body, code in cases:
        assert_problem(api.post(path, body), 422, code)

    assert books.operation_count() == operations_before
    assert _nonce(ledger, wallet.address) == 1
    assert api.get(f"/v1/members/{member['id']}").json()["custody"] == "self"


def test_another_brand_cannot_see_or_change_a_members_custody(api: Api) -> None:
    member, wallet = register_wallet_member(api)
    body = {"enabled": False, **signed_custody(api, wallet, False)}

    response = api.post(f"/v1/members/{member['id']}/custody", body, "brand-sky")

    assert_problem(response, 404, "not_found")
    assert wallet.address not in response.text


# --- recovery matches a custody change to chain state --------------------------------------


def test_recovery_settles_a_custody_change_from_the_wallets_nonce(
    api: Api, ledger: ChainView
) -> None:
    member, wallet = register_wallet_member(api)
    confirmed = api.wait_final(member["custody_operation_id"])
    chain_view = Ledger.from_deployment(ledger.deployment, ledger.keys.account)

    def operation(nonce: int) -> Operation:
        params = {"member_address": wallet.address, "enabled": True, "nonce": nonce}
        return Operation(kind=OperationKind.CUSTODY, brand_code="bean", params=params)

    applied = outcome_on_chain(chain_view, operation(0))
    not_yet = outcome_on_chain(chain_view, operation(1))

    assert applied is not None and applied.confirmed
    assert applied.result == {
        "tx_hash": confirmed["result"]["tx_hash"],
        "block_number": confirmed["result"]["block_number"],
        "enabled": True,
    }
    assert not_yet is None
