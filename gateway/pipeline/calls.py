"""How each operation kind becomes a contract call, and how a receipt settles it.

Pure translation between database rows and contract calls/events, no I/O: the submitter
decides when; this module decides what.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from gateway.db.models import Operation, OperationKind
from gateway.ledger import Ledger, error_code_for

WITHDRAWAL_REASON = 2
DEPOSIT_REASON = 1
BATCHED_KINDS = frozenset({OperationKind.CONVERSION})


def signer_name(operation_kind: str, brand_code: str) -> str:
    """Which signing key submits an operation of `operation_kind` for `brand_code`."""
    if operation_kind in (OperationKind.CONVERSION, OperationKind.GIFT):
        return "operator"
    if operation_kind == OperationKind.PAIR_POLICY:
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
    if kind == OperationKind.WITHDRAWAL:
        token = ledger.brand(p.get("token_brand", first.brand_code)).token
        return token.functions.burn(
            p["member_address"],
            int(p["amount"]),
            first.request_id,
            WITHDRAWAL_REASON,
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
    raise AssertionError(f"operation kind {kind} has no chain call")


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
        for event in _events(ledger.exchange, "Converted", receipt):
            operation = by_request.get(event["requestId"])
            if operation is not None:
                found[operation.id] = Outcome(True, result=conversion_result(event))
        for event in _events(ledger.exchange, "ConversionRejected", receipt):
            operation = by_request.get(event["requestId"])
            if operation is not None and operation.id not in found:
                name, arguments = ledger.client.decoder.decode(event["reason"])
                found[operation.id] = Outcome(
                    False, error_code=error_code_for(name), error_detail=f"{name}{arguments!r}"
                )
    else:
        only = operations[0]
        found[only.id] = Outcome(True, result=_single_result(only, receipt))
    missing = [o for o in operations if o.id not in found]
    assert not missing, f"receipt {receipt['transactionHash'].hex()} says nothing of {missing}"
    return found


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


def _events(contract: Any, name: str, receipt: TxReceipt) -> list[Any]:
    from web3.logs import DISCARD

    event = getattr(contract.events, name)()
    return [
        log["args"]
        for log in event.process_receipt(receipt, errors=DISCARD)
        if log["address"].lower() == contract.address.lower()
    ]
