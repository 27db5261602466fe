"""Matching operations to chain state by request id, for transactions whose fate is unknown
(their nonce was taken by another transaction, or the database lost track of them).
Operations without a request id are matched by what the chain keeps of them instead: an
acknowledgement by the anchor's record, a custody change by the wallet's nonce."""

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
    if operation.kind == OperationKind.CUSTODY:
        return _custody_on_chain(ledger, operation)
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


def _custody_on_chain(ledger: Ledger, operation: Operation) -> Outcome | None:
    """A custody change carries no request id, but its signature carries the wallet's
    nonce, which the exchange uses up exactly when it applies a `setSelfCustody`: the nonce
    is behind the wallet's next one if and only if the change was applied. Each applied
    change emits one `SelfCustodySet`, so the wallet's n-th such log is that of nonce n."""
    p = operation.params
    address, nonce = p["member_address"], int(p["nonce"])
    if ledger.client.call(ledger.exchange.functions.nonces(address)) <= nonce:
        return None
    logs = ledger.exchange.events.SelfCustodySet().get_logs(
        argument_filters={"member": address}, from_block=ledger.deployment.manifest.deploy_block
    )
    assert len(logs) > nonce, f"nonce {nonce} of {address} used but {len(logs)} custody logs"
    log = logs[nonce]
    result = {
        "tx_hash": log["transactionHash"].to_0x_hex(),
        "block_number": log["blockNumber"],
        "enabled": bool(log["args"]["enabled"]),
    }
    return Outcome(True, result=result)


def _contract(ledger: Ledger, operation: Operation) -> Any:
    if operation.kind in (OperationKind.CONVERSION, OperationKind.GIFT):
        return ledger.exchange
    token_brand = operation.params.get("token_brand", operation.brand_code)
    return ledger.brand(token_brand).token
