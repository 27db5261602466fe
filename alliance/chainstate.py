"""Chain state at a fixed block, read in bulk: supplies, balances, anchors, blocks.

Shared by the settlement service (its balance checks at the closing block) and the audit
tool (which compares its replay with the chain). Reads go through `alliance.rpc.JsonRpc` as
raw `eth_call`s at a fixed block, so every figure of one run refers to the same state.
Balances of many holdings are read by a deployless call of `contracts/audit/BalanceLens.sol`
(its creation code plus the holdings, packed in 21 bytes each, as constructor arguments;
the constructor returns the balances): one call per `LENS_HOLDINGS_MAX` holdings instead of
one request per holding. `balances_batched` is the
plain alternative (batched `balanceOf` calls) for nodes that refuse code-less calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak

from alliance.rpc import JsonRpc

LENS_HOLDINGS_MAX = 700
"""Holdings per lens call. The constructor's return data counts as contract code, so the
balances (32 bytes each) must stay under the EIP-170 limit of 24,576 bytes; the creation
code (~1 KB) plus 21 bytes a holding stays well under the EIP-3860 initcode limit."""

LENS_CALLS_PER_REQUEST = 16
"""Lens calls per JSON-RPC batch: each carries ~16 KB of arguments, and nodes cap the size
of a request body (Anvil refuses a few megabytes)."""

LENS_TOKENS_MAX = 255
"""A packed holding names its token in one byte."""

LENS_CALL_GAS = 30_000_000
"""Gas granted to one lens call (Anvil's and Besu's default call cap)."""

BALANCE_OF = keccak(text="balanceOf(address)")[:4]
TOTAL_SUPPLY = keccak(text="totalSupply()")[:4]
NOTICE_PERIOD_DEFAULT = keccak(text="NOTICE_PERIOD_DEFAULT()")[:4]

Holding = tuple[str, str]
"""(token, account), both lower-case 0x-hex."""


def _call(to: str, data: bytes, block: int) -> tuple[str, list[Any]]:
    return ("eth_call", [{"to": to, "data": "0x" + data.hex()}, hex(block)])


def _word(result: str) -> int:
    return int(result, 16) if result not in ("0x", "") else 0


def total_supplies(rpc: JsonRpc, tokens: Sequence[str], block: int) -> dict[str, int]:
    """Each token's `totalSupply` at `block`."""
    results = rpc.batch([_call(token, TOTAL_SUPPLY, block) for token in tokens])
    return {token: _word(result) for token, result in zip(tokens, results, strict=True)}


def balances_batched(rpc: JsonRpc, holdings: Sequence[Holding], block: int) -> list[int]:
    """`balanceOf` of every holding at `block`, as batched JSON-RPC calls."""
    requests = [
        _call(token, BALANCE_OF + bytes.fromhex(account[2:].rjust(64, "0")), block)
        for token, account in holdings
    ]
    return [_word(result) for result in rpc.batch(requests)]


def balances_lens(
    rpc: JsonRpc,
    lens_creation_code: str,
    holdings: Sequence[Holding],
    block: int,
    *,
    holdings_per_call: int | None = None,
) -> list[int]:
    """`balanceOf` of every holding at `block`, through deployless `BalanceLens` calls of
    `holdings_per_call` holdings each (default and most: `LENS_HOLDINGS_MAX`)."""
    per_call = holdings_per_call or LENS_HOLDINGS_MAX
    assert 1 <= per_call <= LENS_HOLDINGS_MAX, per_call
    code = bytes.fromhex(lens_creation_code.removeprefix("0x"))
    requests = []
    for start in range(0, len(holdings), per_call):
        chunk = holdings[start : start + per_call]
        tokens = sorted({token for token, _ in chunk})
        assert len(tokens) <= LENS_TOKENS_MAX, "the exchange lists at most 255 brands"
        index = {token: position for position, token in enumerate(tokens)}
        packed = b"".join(
            bytes([index[token]]) + bytes.fromhex(account[2:]) for token, account in chunk
        )
        arguments = abi_encode(["address[]", "bytes"], [tokens, packed])
        call = {"data": "0x" + (code + arguments).hex(), "gas": hex(LENS_CALL_GAS)}
        requests.append(("eth_call", [call, hex(block)]))
    balances: list[int] = []
    for start in range(0, len(requests), LENS_CALLS_PER_REQUEST):
        for result in rpc.batch(requests[start : start + LENS_CALLS_PER_REQUEST]):
            balances.extend(uint256_array(result))
    return balances


def uint256_array(result: str) -> list[int]:
    """An ABI-encoded `uint256[]` (0x-hex return data), decoded by hand: eth_abi's generic
    decoder was most of the CPU of reading a busy day's two million balances."""
    data = result[2:]
    # The lens returns exactly one uint256[]: anything else is a bug, not bad input.
    assert len(data) >= 128 and int(data[:64], 16) == 32, f"not one uint256[]: {result[:140]}"
    count = int(data[64:128], 16)
    assert len(data) == 128 + 64 * count, f"uint256[] of {count} in {len(data) // 2} bytes"
    return [int(data[at : at + 64], 16) for at in range(128, len(data), 64)]


def notice_period_default(rpc: JsonRpc, exchange: str, block: int) -> int:
    """The rate book's notice period before any `NoticePeriodChanged`."""
    method, params = _call(exchange, NOTICE_PERIOD_DEFAULT, block)
    return _word(rpc.call(method, *params))


def block_hashes(rpc: JsonRpc, numbers: Sequence[int]) -> dict[int, str | None]:
    """Block number → hash (None for a block the chain does not have)."""
    blocks = rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
    return {n: (b["hash"] if b else None) for n, b in zip(numbers, blocks, strict=True)}


def topic_logs(
    rpc: JsonRpc, address: str, topic0: bytes, from_block: int, to_block: int
) -> list[Any]:
    """Raw logs of one event of one contract (a cheap read: the node filters by topic)."""
    query = {
        "address": address,
        "fromBlock": hex(from_block),
        "toBlock": hex(to_block),
        "topics": ["0x" + topic0.hex()],
    }
    return list(rpc.call("eth_getLogs", query))


def transaction_and_receipt(rpc: JsonRpc, transaction_hash: str) -> tuple[Any, Any]:
    """The transaction and its receipt, as the node returns them."""
    transaction, receipt = rpc.batch(
        [
            ("eth_getTransactionByHash", [transaction_hash]),
            ("eth_getTransactionReceipt", [transaction_hash]),
        ]
    )
    return transaction, receipt
