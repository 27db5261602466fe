"""How each operation kind becomes a contract call, and how a receipt settles it.

Pure translation between database rows and contract calls/events, no I/O: the submitter
decides when; this module decides what.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak
from hexbytes import HexBytes
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from alliance.db.models import Operation, OperationKind
from gateway.ledger import Ledger, error_code_for

WITHDRAWAL_REASON = 2
EXPIRY_REASON = 4
DEPOSIT_REASON = 1
BATCHED_KINDS = frozenset({OperationKind.CONVERSION})

BATCH_GAS_BASE = 100_000
BATCH_GAS_PER_ITEM = 150_000
"""A conversion batch's gas limit, instead of an estimate (which would run the whole batch
once more on the node): above the worst item (a fresh bitmap word and first-ever balances
cost ~125k) and, at 256 items, under a 30M-gas block. Gas is free on this chain."""


def batch_gas_limit(items: int) -> int:
    """The gas limit for a conversion batch of `items`."""
    return BATCH_GAS_BASE + BATCH_GAS_PER_ITEM * items


def signer_name(operation_kind: str, brand_code: str) -> str:
    """Which signing key submits an operation of `operation_kind` for `brand_code`."""
    if operation_kind in (OperationKind.CONVERSION, OperationKind.GIFT, OperationKind.CUSTODY):
        return "operator"
    if operation_kind in (OperationKind.PAIR_POLICY, OperationKind.ACKNOWLEDGEMENT):
        return f"{brand_code}.admin"
    return f"{brand_code}.issuer"


def conversion_request(operation: Operation) -> tuple[Any, ...]:
    """The exchange's ConversionRequest tuple for a conversion operation."""
    p = operation.params
    return (
        operation.request_id,
        p["member_address"],
        p["from_token"],
        p["to_token"],
        int(p["amount_in"]),
        int(p["min_amount_out"]),
        int(p["deadline"]),
    )


CONVERSION_REQUEST_TYPE = "(uint256,address,address,address,uint256,uint256,uint256)"
"""The ABI type of the exchange's ConversionRequest."""

CONVERT_BATCH_SELECTOR = keccak(text=f"convertBatch({CONVERSION_REQUEST_TYPE}[],bytes[])")[:4]


def conversion_batch_calldata(operations: list[Operation]) -> bytes:
    """The calldata of `convertBatch` for conversion `operations`, encoded by hand: web3's
    contract-function path costs ~1 ms per item (argument normalisation and validation),
    and even eth_abi's encoder a few hundred microseconds per batch. The layout is the ABI's
    (tests compare it with web3's byte for byte): two offsets, the array of static tuples
    (length, then 7 words per item), then `bytes[]` (length, offsets, padded items)."""
    requests = [conversion_request_words(conversion_request(o)) for o in operations]
    signatures = [bytes.fromhex(o.params.get("signature", "")[2:]) for o in operations]
    if not any(signatures):
        signatures = []
    requests_size = 32 + sum(len(request) for request in requests)
    parts = [
        CONVERT_BATCH_SELECTOR,
        _word(64),
        _word(64 + requests_size),
        _word(len(requests)),
        *requests,
        _word(len(signatures)),
    ]
    offset = 32 * len(signatures)
    for signature in signatures:
        parts.append(_word(offset))
        offset += 32 + _padded_size(len(signature))
    for signature in signatures:
        parts += [
            _word(len(signature)),
            signature,
            bytes(_padded_size(len(signature)) - len(signature)),
        ]
    return b"".join(parts)


def conversion_request_words(request: tuple[Any, ...]) -> bytes:
    """The ABI encoding of one ConversionRequest (all static: seven 32-byte words)."""
    request_id, member, from_token, to_token, amount_in, min_amount_out, deadline = request
    return b"".join(
        (
            _word(request_id),
            _address_word(member),
            _address_word(from_token),
            _address_word(to_token),
            _word(amount_in),
            _word(min_amount_out),
            _word(deadline),
        )
    )


UINT256_END = 1 << 256


def _word(value: int) -> bytes:
    if not 0 <= value < UINT256_END:  # eth_abi's own refusal, as before
        return abi_encode(["uint256"], [value])
    return value.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    raw = bytes.fromhex(address.removeprefix("0x"))
    assert len(raw) == 20, f"not an address: {address!r}"
    return bytes(12) + raw


def _padded_size(size: int) -> int:
    return -(-size // 32) * 32


def build_call(ledger: Ledger, operations: list[Operation]) -> ContractFunction:
    """The single contract call that carries `operations` (several only for conversions)."""
    first = operations[0]
    kind = first.kind
    if kind == OperationKind.CONVERSION:
        requests = [conversion_request(operation) for operation in operations]
        signatures = [bytes.fromhex(o.params.get("signature", "")[2:]) for o in operations]
        if not any(signatures):
            signatures = []
        return ledger.exchange.functions.convertBatch(requests, signatures)
    assert len(operations) == 1, "only conversions are batched"
    p = first.params
    if kind == OperationKind.DEPOSIT:
        token = ledger.brand(first.brand_code).token
        return token.functions.mint(
            p["member_address"],
            int(p["amount"]),
            first.request_id,
            int(p["source"]),
            bytes.fromhex(p["brand_ref"]),
        )
    if kind in (OperationKind.WITHDRAWAL, OperationKind.EXPIRY):
        token = ledger.brand(p.get("token_brand", first.brand_code)).token
        return token.functions.burn(
            p["member_address"],
            int(p["amount"]),
            first.request_id,
            EXPIRY_REASON if kind == OperationKind.EXPIRY else WITHDRAWAL_REASON,
            bytes.fromhex(p["brand_ref"]),
        )
    if kind == OperationKind.GIFT:
        request = (
            first.request_id,
            p["token"],
            p["from_address"],
            p["to_address"],
            int(p["amount"]),
            int(p["deadline"]),
        )
        return ledger.exchange.functions.gift(request, bytes.fromhex(p.get("signature", "")[2:]))
    if kind == OperationKind.PAIR_POLICY:
        return ledger.exchange.functions.setPairPolicy(
            p["from_token"],
            p["to_token"],
            p["enabled"],
            p["fee_bps"],
            p["min_amount_out"],
            p["max_amount_out"],
            p["daily_cap"],
        )
    if kind == OperationKind.ACKNOWLEDGEMENT:
        return ledger.anchor.functions.acknowledge(p["period_id"], p["token"])
    if kind == OperationKind.CUSTODY:
        return ledger.exchange.functions.setSelfCustody(
            p["member_address"],
            bool(p["enabled"]),
            int(p["deadline"]),
            bytes.fromhex(p["signature"][2:]),
        )
    raise AssertionError(f"operation kind {kind} has no chain call")


def receipt_from_rpc(raw: dict[str, Any]) -> TxReceipt:
    """The fields of a JSON-RPC receipt that settling reads: status, block and hash, typed
    as web3 would give them, and each log's address, topics and data as the node's hex
    text (`log_bytes` reads them): a batch receipt has hundreds of logs, most of them token
    transfers nobody reads here, and decoding every topic was ~2 % of the gateway's CPU."""
    receipt = {
        "status": int(raw["status"], 16),
        "blockNumber": int(raw["blockNumber"], 16),
        "transactionHash": HexBytes(raw["transactionHash"]),
        "logs": [
            {"address": log["address"], "topics": log["topics"], "data": log["data"]}
            for log in raw["logs"]
        ],
    }
    return cast(TxReceipt, receipt)


def log_bytes(value: str | bytes) -> bytes:
    """A log's topic or data as bytes, whether hex text (`receipt_from_rpc`) or bytes."""
    return bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)


@dataclass(frozen=True)
class Outcome:
    """How one operation ended on chain."""

    confirmed: bool
    result: dict[str, Any] | None = None
    error_code: str | None = None
    error_detail: str | None = None


def outcomes(ledger: Ledger, operations: list[Operation], receipt: TxReceipt) -> dict[int, Outcome]:
    """Each operation's outcome from a mined receipt, keyed by operation id."""
    if receipt["status"] != 1:
        block = receipt["blockNumber"]
        return {
            o.id: Outcome(
                False, error_code="chain_rejected", error_detail=f"reverted in block {block}"
            )
            for o in operations
        }
    by_request = {o.request_id: o for o in operations}
    found: dict[int, Outcome] = {}
    kind = operations[0].kind
    if kind == OperationKind.CONVERSION:
        for request_id, outcome in conversion_outcomes(ledger, receipt):
            operation = by_request.get(request_id)
            if operation is not None and operation.id not in found:
                found[operation.id] = outcome
    else:
        only = operations[0]
        found[only.id] = Outcome(True, result=_single_result(only, receipt))
    missing = [o for o in operations if o.id not in found]
    assert not missing, f"receipt {receipt['transactionHash'].hex()} says nothing of {missing}"
    return found


CONVERTED_TOPIC = keccak(
    text="Converted(uint256,address,address,address,uint256,uint256,uint256,uint256,uint96,uint96,uint16)"
)
CONVERTED_DATA = [
    "address",
    "uint256",
    "uint256",
    "uint256",
    "uint256",
    "uint96",
    "uint96",
    "uint16",
]
CONVERTED_AMOUNTS = (
    "amountIn",
    "amountOut",
    "feePoints",
    "valueIn",
    "rateFrom",
    "rateTo",
    "feeBps",
)
"""The `Converted` data words after `toToken`, in order (all unsigned integers)."""
REJECTED_TOPIC = keccak(text="ConversionRejected(uint256,address,bytes)")


def conversion_outcomes(ledger: Ledger, receipt: TxReceipt) -> list[tuple[int, Outcome]]:
    """(request id, outcome) for every Converted and ConversionRejected log of the exchange.

    Decoded directly from topics and data: a batch receipt has hundreds of logs, and
    matching each against every event ABI (web3's process_receipt) costs seconds.
    """
    exchange = ledger.exchange.address.lower()
    found = []
    for log in receipt["logs"]:
        if log["address"].lower() != exchange:
            continue
        topics = log["topics"]
        topic = log_bytes(topics[0])
        request_id = int.from_bytes(log_bytes(topics[1]), "big") if len(topics) > 1 else 0
        if topic == CONVERTED_TOPIC:
            found.append(
                (request_id, Outcome(True, result=converted_result(log_bytes(log["data"]))))
            )
        elif topic == REJECTED_TOPIC:
            (reason,) = abi_decode(["bytes"], log_bytes(log["data"]))
            name, arguments = ledger.client.decoder.decode(reason)
            detail = f"{name}{arguments!r}"
            found.append(
                (request_id, Outcome(False, error_code=error_code_for(name), error_detail=detail))
            )
    return found


def converted_result(data: bytes) -> dict[str, Any]:
    """The public figures of a `Converted` log's data. All its words are static, so they are
    read straight from the data (eth_abi's decoder, per log, cost more than the rest of
    settling); the first word, `toToken`, is not reported."""
    assert len(data) == 32 * len(CONVERTED_DATA), f"Converted data of {len(data)} bytes"
    amounts = [int.from_bytes(data[start : start + 32], "big") for start in range(32, 256, 32)]
    return conversion_result(dict(zip(CONVERTED_AMOUNTS, amounts, strict=True)))


def conversion_result(event: Any) -> dict[str, Any]:
    """The public figures of a `Converted` event (amounts as strings: JSON-safe integers)."""
    return {
        "amount_in": str(event["amountIn"]),
        "amount_out": str(event["amountOut"]),
        "fee_points": str(event["feePoints"]),
        "value_in_units": str(event["valueIn"]),
        "rate_from_units": str(event["rateFrom"]),
        "rate_to_units": str(event["rateTo"]),
        "fee_bps": event["feeBps"],
    }


def _single_result(operation: Operation, receipt: TxReceipt) -> dict[str, Any]:
    return {
        "tx_hash": receipt["transactionHash"].to_0x_hex(),
        "block_number": receipt["blockNumber"],
    }
