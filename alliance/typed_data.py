"""The exchange's EIP-712 messages (`contracts/exchange/AllianceExchange.sol`), in the
`types` form eth_account and wallets (`eth_signTypedData_v4`) take.

Self-custody members sign these; the gateway hands out documents built from them, and the
contract tests sign with them. Each list must match the contract's typehash string field
for field (tests/contracts check signatures against the deployed exchange).
"""

from __future__ import annotations

from typing import Any

Fields = list[dict[str, str]]

EIP712_DOMAIN: Fields = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
EXCHANGE_NAME, EXCHANGE_VERSION = "AllianceExchange", "1"
"""The exchange's EIP-712 domain name and version (its constructor's `EIP712(...)`)."""

CONVERSION: Fields = [
    {"name": "requestId", "type": "uint256"},
    {"name": "member", "type": "address"},
    {"name": "fromToken", "type": "address"},
    {"name": "toToken", "type": "address"},
    {"name": "amountIn", "type": "uint256"},
    {"name": "minAmountOut", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
GIFT: Fields = [
    {"name": "requestId", "type": "uint256"},
    {"name": "token", "type": "address"},
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "amount", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
SELF_CUSTODY: Fields = [
    {"name": "member", "type": "address"},
    {"name": "enabled", "type": "bool"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


def exchange_domain_at(chain_id: int, exchange: str) -> dict[str, Any]:
    """The exchange's EIP-712 domain on `chain_id` at address `exchange`."""
    return {
        "name": EXCHANGE_NAME,
        "version": EXCHANGE_VERSION,
        "chainId": chain_id,
        "verifyingContract": exchange,
    }


def typed_document(
    primary: str, fields: Fields, domain: dict[str, Any], message: dict[str, Any]
) -> dict[str, Any]:
    """A complete typed-data document (what `eth_signTypedData_v4` takes)."""
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN, primary: fields},
        "primaryType": primary,
        "domain": domain,
        "message": message,
    }
