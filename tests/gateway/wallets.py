"""A member's own wallet as a self-custody member's app would use it: a local key (eth_account)
that signs the EIP-712 `SelfCustody` message the gateway hands out
(`GET /v1/members/custody-message`), and the requests built from those signatures."""

from __future__ import annotations

import time
import uuid
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.gateway.api_client import BRAND_CLIENTS, Api


def new_wallet() -> LocalAccount:
    return Account.create()


def custody_message(
    api: Api, address: str, enabled: bool = True, deadline: int | None = None
) -> dict[str, Any]:
    query: dict[str, Any] = {"address": address, "enabled": str(enabled).lower()}
    if deadline is not None:
        query["deadline"] = deadline
    response = api.http.get(
        "/v1/members/custody-message", params=query, headers=api.auth("brand-bean")
    )
    assert response.status_code == 200, response.text
    message: dict[str, Any] = response.json()
    return message


def signed_custody(
    api: Api,
    wallet: LocalAccount,
    enabled: bool = True,
    *,
    deadline: int | None = None,
    nonce: int | None = None,
    signer: LocalAccount | None = None,
) -> dict[str, Any]:
    """`{nonce, deadline, signature}` for `wallet`'s custody `enabled`, signed by `signer`
    (the wallet itself unless given), over the gateway's typed data; `nonce` overrides the
    wallet's current one (a stale or future signature)."""
    message = custody_message(api, wallet.address, enabled, deadline)
    typed = message["typed_data"]
    if nonce is not None:
        typed["message"]["nonce"] = nonce
    signed = (signer or wallet).sign_typed_data(full_message=typed)
    return {
        "nonce": typed["message"]["nonce"],
        "deadline": message["deadline"],
        "signature": "0x" + bytes(signed.signature).hex(),
    }


def wallet_registration(api: Api, wallet: LocalAccount, **signing: Any) -> dict[str, Any]:
    """A `POST /v1/members` body registering a new brand member id with `wallet`."""
    proof = {"address": wallet.address, **signed_custody(api, wallet, True, **signing)}
    return {"brand_member_id": f"wallet-{uuid.uuid4().hex[:12]}", "wallet": proof}


def register_wallet_member(
    api: Api, wallet: LocalAccount | None = None, brand: str = "bean"
) -> tuple[dict[str, Any], LocalAccount]:
    """A member registered at `brand` with a (new) wallet, its custody change confirmed."""
    wallet = wallet or new_wallet()
    response = api.post("/v1/members", wallet_registration(api, wallet), BRAND_CLIENTS[brand])
    assert response.status_code == 201, response.text
    member: dict[str, Any] = response.json()
    operation = api.wait_final(member["custody_operation_id"])
    assert operation["status"] == "confirmed", operation
    return member, wallet


def expired_deadline() -> int:
    return int(time.time()) - 60


def signable_quote(
    api: Api, member_id: str, amount_in: int, client: str = "brand-bean", **terms: Any
) -> dict[str, Any]:
    """A quote of `amount_in` bean → sky (unless `terms` say otherwise) for a self-custody
    member: it carries the typed data of the conversion to sign."""
    body = {"member_id": member_id, "from_brand": "bean", "to_brand": "sky"}
    response = api.post("/v1/quotes", {**body, "amount_in": amount_in, **terms}, client)
    assert response.status_code == 201, response.text
    quote: dict[str, Any] = response.json()
    assert quote["typed_data"] is not None, quote
    return quote


def sign_quote(wallet: LocalAccount, quote: dict[str, Any], **changed: Any) -> str:
    """`wallet`'s signature over the quote's typed data (with `changed` message fields)."""
    typed = {**quote["typed_data"]}
    typed["message"] = {**typed["message"], **changed}
    return "0x" + bytes(wallet.sign_typed_data(full_message=typed).signature).hex()


def signed_conversion(
    member_id: str, quote: dict[str, Any], wallet: LocalAccount, **changed: Any
) -> dict[str, Any]:
    """A `POST /v1/conversions` body accepting `quote` with `wallet`'s signature."""
    signature = sign_quote(wallet, quote, **changed)
    return {"member_id": member_id, "quote_id": quote["quote_id"], "signature": signature}
