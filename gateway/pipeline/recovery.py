"""Matching operations to chain state by request id, for transactions whose fate is unknown
(their nonce was taken by another transaction, or the database lost track of them)."""

from __future__ import annotations

from typing import Any

from alliance.db.models import Operation, OperationKind
from gateway.ledger import Ledger
from gateway.pipeline.calls import Outcome, conversion_result

EVENT_BY_KIND = {
    OperationKind.CONVERSION: "Converted",
    OperationKind.GIFT: "Gifted",
    OperationKind.DEPOSIT: "PointsMinted",
    OperationKind.WITHDRAWAL: "PointsBurned",
    OperationKind.EXPIRY: "PointsBurned",
}


def outcome_on_chain(ledger: Ledger, operation: Operation) -> Outcome | None:
    """The operation's outcome if the chain processed its request id, else None."""
    if operation.kind == OperationKind.ACKNOWLEDGEMENT:
        return _acknowledgement_on_chain(ledger, operation)
    if operation.kind not in EVENT_BY_KIND or operation.request_id is None:
        return None
    contract = _contract(ledger, operation)
    if not ledger.client.call(contract.functions.isRequestProcessed(operation.request_id)):
        return None
    event = getattr(contract.events, EVENT_BY_KIND[OperationKind(operation.kind)])
    logs = event().get_logs(
        argument_filters={"requestId": operation.request_id},
        from_block=ledger.deployment.manifest.deploy_block,
    )
    assert len(logs) == 1, f"request {operation.request_id} processed but {len(logs)} events"
    log = logs[0]
    result: dict[str, Any] = {
        "tx_hash": log["transactionHash"].to_0x_hex(),
        "block_number": log["blockNumber"],
    }
    if operation.kind == OperationKind.CONVERSION:
        result |= conversion_result(log["args"])
    return Outcome(True, result=result)


def _acknowledgement_on_chain(ledger: Ledger, operation: Operation) -> Outcome | None:
    """An acknowledgement carries no request id: the anchor's own record says whether the
    brand acknowledged the period (by this operation or any earlier one: either way done)."""
    p = operation.params
    found = ledger.acknowledgement(p["period_id"], operation.brand_code, p["closing_block"])
    if found is None:
        return None
    return Outcome(
        True, result={"tx_hash": found["tx_hash"], "block_number": found["block_number"]}
    )


def _contract(ledger: Ledger, operation: Operation) -> Any:
    if operation.kind in (OperationKind.CONVERSION, OperationKind.GIFT):
        return ledger.exchange
    token_brand = operation.params.get("token_brand", operation.brand_code)
    return ledger.brand(token_brand).token
