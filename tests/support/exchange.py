"""Helpers the exchange, rate and conversion-property tests share.

Members sign EIP-712 messages under the exchange's domain (`sign_conversion`, `sign_gift`,
`sign_self_custody`); `reverts_with` asserts a custom error with arguments written the way
the tests hold them (checksummed addresses); `rolled_back` and `mine_next_block_at` give a
test exact control over chain state and time inside one example of a property test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3.types import TxReceipt

from alliance import typed_data
from tests.support.alliance import DEADLINE_FAR, DeployedAlliance, new_member, reverts

DAY_S = 86_400

CONVERSION_TYPES = {"Conversion": typed_data.CONVERSION}
GIFT_TYPES = {"Gift": typed_data.GIFT}
SELF_CUSTODY_TYPES = {"SelfCustody": typed_data.SELF_CUSTODY}


def decoded(*arguments: Any) -> tuple[Any, ...]:
    """`arguments` as the error decoder returns them (eth_abi decodes addresses lowercase)."""
    return tuple(_decoded(argument) for argument in arguments)


def _decoded(argument: Any) -> Any:
    if isinstance(argument, str) and argument.startswith("0x") and len(argument) == 42:
        return argument.lower()
    return argument


@contextmanager
def reverts_with(error_name: str, *arguments: Any) -> Iterator[Any]:
    """Assert the block reverts with `error_name` and exactly `arguments` (or none)."""
    with reverts(error_name, *decoded(*arguments)) as caught:
        yield caught
    assert len(caught.value.arguments) == len(arguments), caught.value


def decode_reason(alliance: DeployedAlliance, reason: bytes) -> tuple[str, tuple[Any, ...]]:
    """A `ConversionRejected.reason` as (custom error name, arguments)."""
    return alliance.client.decoder.decode(reason)


# ---------------------------------------------------------------------- EIP-712


def exchange_domain(alliance: DeployedAlliance) -> dict[str, Any]:
    """The EIP-712 domain members sign under."""
    return typed_data.exchange_domain_at(alliance.client.w3.eth.chain_id, alliance.exchange.address)


def conversion_message(request: tuple[Any, ...]) -> dict[str, Any]:
    """A ConversionRequest tuple as the EIP-712 `Conversion` message."""
    names = [field["name"] for field in CONVERSION_TYPES["Conversion"]]
    return dict(zip(names, request, strict=True))


def sign_conversion(
    alliance: DeployedAlliance, signer: LocalAccount, request: tuple[Any, ...]
) -> bytes:
    """`signer`'s signature over the conversion `request`."""
    signed = signer.sign_typed_data(
        exchange_domain(alliance), CONVERSION_TYPES, conversion_message(request)
    )
    return bytes(signed.signature)


def gift_request(
    alliance: DeployedAlliance,
    code: str,
    sender: str,
    recipient: str,
    amount: int,
    request_id: int,
    deadline: int = DEADLINE_FAR,
) -> tuple[int, str, str, str, int, int]:
    """A GiftRequest tuple as the contract takes it."""
    return (request_id, alliance.tokens[code].address, sender, recipient, amount, deadline)


def sign_gift(alliance: DeployedAlliance, signer: LocalAccount, request: tuple[Any, ...]) -> bytes:
    """`signer`'s signature over the gift `request`."""
    names = [field["name"] for field in GIFT_TYPES["Gift"]]
    message = dict(zip(names, request, strict=True))
    return bytes(signer.sign_typed_data(exchange_domain(alliance), GIFT_TYPES, message).signature)


def self_custody_message(member: str, enabled: bool, nonce: int, deadline: int) -> dict[str, Any]:
    return {"member": member, "enabled": enabled, "nonce": nonce, "deadline": deadline}


def sign_self_custody(
    alliance: DeployedAlliance,
    signer: LocalAccount,
    member: str,
    enabled: bool,
    nonce: int,
    deadline: int,
) -> bytes:
    """`signer`'s signature switching `member` to (or from) self-custody."""
    message = self_custody_message(member, enabled, nonce, deadline)
    return bytes(
        signer.sign_typed_data(exchange_domain(alliance), SELF_CUSTODY_TYPES, message).signature
    )


def recovered_signer(
    alliance: DeployedAlliance, types: dict[str, Any], message: dict[str, Any], signature: bytes
) -> str:
    """Who the exchange will see as the signer of `signature` over `message`."""
    signable = encode_typed_data(exchange_domain(alliance), types, message)
    signer: str = Account.recover_message(signable, signature=signature)
    return signer


def set_self_custody(
    alliance: DeployedAlliance,
    member: LocalAccount,
    enabled: bool = True,
    deadline: int = DEADLINE_FAR,
) -> TxReceipt:
    """Switch `member` to (or from) self-custody on their own signature, relayed by the operator."""
    nonce = alliance.call(alliance.exchange.functions.nonces(member.address))
    signature = sign_self_custody(alliance, member, member.address, enabled, nonce, deadline)
    return alliance.transact(
        alliance.operator,
        alliance.exchange.functions.setSelfCustody(member.address, enabled, deadline, signature),
    )


# ---------------------------------------------------------------------- freezes


def set_frozen(
    alliance: DeployedAlliance, code: str, member: str, frozen: bool = True
) -> TxReceipt:
    """Freeze (or unfreeze) `member` at brand `code` with both of the brand's freezers."""
    function = alliance.exchange.functions.setFrozen(alliance.tokens[code].address, member, frozen)
    alliance.transact(alliance.brand_party(code, "freezer_a"), function)
    return alliance.transact(alliance.brand_party(code, "freezer_b"), function)


# ---------------------------------------------------------------------- members and movements

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
RATES = {"bean": 10**16, "sky": 2 * 10**16, "cart": 5 * 10**15}
"""Scaled rates of the test brands (TEST_CONFIG): 100, 50 and 200 points per value unit."""


def funded_member(alliance: DeployedAlliance, code: str = "bean", amount: int = 10_000) -> str:
    """A fresh custodial member holding `amount` points of `code`."""
    member = new_member().address
    alliance.deposit(code, member, amount)
    return member


def funded_self_custody_member(
    alliance: DeployedAlliance, code: str = "bean", amount: int = 10_000
) -> LocalAccount:
    """A fresh self-custody member holding `amount` points of `code`."""
    member = new_member()
    alliance.deposit(code, member.address, amount)
    set_self_custody(alliance, member)
    return member


def supplies(alliance: DeployedAlliance) -> dict[str, int]:
    """Total supply of every brand token, by brand code."""
    return {
        code: alliance.call(token.functions.totalSupply())
        for code, token in alliance.tokens.items()
    }


def balances(alliance: DeployedAlliance, member: str) -> dict[str, int]:
    """`member`'s balance of every brand token, by brand code."""
    return {code: alliance.balance(code, member) for code in alliance.tokens}


def convert_signed(alliance: DeployedAlliance, request: tuple[Any, ...], signature: bytes) -> Any:
    """Relay a self-custody member's signed conversion as the operator."""
    return alliance.transact(
        alliance.operator, alliance.exchange.functions.convertWithSignature(request, signature)
    )


def is_processed(alliance: DeployedAlliance, request_id: int) -> bool:
    """Whether the exchange has used `request_id`."""
    return bool(alliance.call(alliance.exchange.functions.isRequestProcessed(request_id)))


def gift(alliance: DeployedAlliance, request: tuple[Any, ...], signature: bytes = b"") -> Any:
    """Submit a gift as the operator: custodial when `signature` is empty."""
    return alliance.transact(
        alliance.operator, alliance.exchange.functions.gift(request, signature)
    )


# ---------------------------------------------------------------------- chain control


@contextmanager
def rolled_back(alliance: DeployedAlliance) -> Iterator[None]:
    """Undo every chain change made inside the block (one hypothesis example, say)."""
    provider = alliance.client.w3.provider
    snapshot = provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    try:
        yield
    finally:
        reverted = provider.make_request("evm_revert", [snapshot])["result"]  # type: ignore[arg-type]
        assert reverted, "Anvil refused to revert the snapshot"


def set_next_block_timestamp(alliance: DeployedAlliance, timestamp: int) -> None:
    """Make the next mined block (the next transaction's) carry exactly `timestamp`."""
    response = alliance.client.w3.provider.make_request(
        "evm_setNextBlockTimestamp",
        [timestamp],  # type: ignore[arg-type]
    )
    assert "error" not in response, response


def mine_next_block_at(alliance: DeployedAlliance, timestamp: int) -> None:
    """Mine an empty block at exactly `timestamp` (later than the latest block)."""
    set_next_block_timestamp(alliance, timestamp)
    alliance.client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert alliance.timestamp() == timestamp


def move_to_start_of_next_utc_day(alliance: DeployedAlliance, margin_s: int = 3_600) -> int:
    """Mine a block `margin_s` into the next UTC day, so a test's day cannot roll over
    under it; returns that day's number (timestamp // 86400)."""
    day = alliance.timestamp() // DAY_S + 1
    mine_next_block_at(alliance, day * DAY_S + margin_s)
    return day


def block_timestamp(alliance: DeployedAlliance, receipt: TxReceipt) -> int:
    """The timestamp of the block that mined `receipt`."""
    return int(alliance.client.w3.eth.get_block(receipt["blockNumber"])["timestamp"])


def emitted(
    alliance: DeployedAlliance, receipt: TxReceipt, contract: Any, name: str
) -> list[dict[str, Any]]:
    """Decoded `name` events emitted by `contract` itself in `receipt`.

    Unlike `DeployedAlliance.events`, which decodes every log whose signature matches (all
    point tokens share the ERC-20 `Transfer` signature), this keeps only `contract`'s logs.
    """
    own_logs = [log for log in receipt["logs"] if log["address"] == contract.address]
    return alliance.events({**receipt, "logs": own_logs}, contract, name)  # type: ignore[arg-type]
