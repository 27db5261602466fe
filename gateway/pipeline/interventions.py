"""Operators' cancels and re-submits of signed operations, carried out by the submitter that
owns the operation's signing key (it alone may use the key's nonces).

- **Re-submit**: re-broadcast the stored raw transaction (same hash, same nonce).
- **Cancel**: sign a zero-value transfer from the signer to itself with the SAME nonce
  (gas price 0, like every transaction here), keep it on the admin action (committed before
  it is sent), and from then on broadcast it instead of the original. Whichever of the two
  the chain mines decides: the original → the operation applies and the cancel is
  `too_late`; the replacement → recovery (`_reconcile_replaced`) finds the request id
  unprocessed and fails the operation `cancelled` instead of sending it again.

A node may refuse a replacement at the same gas price ("replacement transaction
underpriced": Anvil does); the original then stays in its pool and is mined, so the cancel
ends `too_late`. A node that has lost the original accepts the replacement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from sqlalchemy.orm import Session

from alliance.db.base import utc_now
from alliance.db.models import (
    AdminAction,
    AdminActionKind,
    AdminActionStatus,
    ChainTransaction,
    Operation,
    OperationStatus,
)
from gateway import errors
from gateway.pipeline.calls import Outcome

TRANSFER_GAS = 21_000
"""Gas of a plain value transfer (the cancel replacement)."""

OPEN_STATUSES = (AdminActionStatus.PENDING, AdminActionStatus.SENT)

Finish = Callable[[Session, Operation, Outcome], None]


def open_action_ids(session: Session, signer_name: str) -> list[int]:
    """Open actions on operations of this signing key, oldest first."""
    return list(
        session.scalars(
            select(AdminAction.id)
            .join(Operation, Operation.id == AdminAction.operation_id)
            .where(Operation.signer == signer_name)
            .where(AdminAction.status.in_(OPEN_STATUSES))
            .order_by(AdminAction.id)
        )
    )


def complete(action: AdminAction, status: AdminActionStatus, detail: str) -> None:
    """Close `action` with what became of it."""
    action.status = status
    action.detail = detail
    action.completed_at = utc_now()


def carry_out(
    session: Session, action_id: int, account: LocalAccount, chain_id: int, finish: Finish
) -> tuple[bool, bytes | None]:
    """Advance one open action inside the caller's unit of work. Returns whether it moved
    and the raw transaction to broadcast after the commit, if any."""
    action = session.get_one(AdminAction, action_id)
    operation = session.get_one(Operation, action.operation_id)
    if OperationStatus(operation.status).is_final:
        _close_on_final(action, operation)
        return True, None
    if operation.status == OperationStatus.ACCEPTED:
        # Not signed (or back from a replaced transaction): nothing of it is on the chain.
        if action.action == AdminActionKind.CANCEL:
            finish(session, operation, cancelled_by(action))
            complete(action, AdminActionStatus.DONE, "cancelled before it was signed")
        else:
            complete(action, AdminActionStatus.DONE, "not signed yet: nothing to re-send")
        return True, None
    transaction = session.get_one(ChainTransaction, operation.transaction_id)
    if action.action == AdminActionKind.RESUBMIT:
        action.tx_hash = transaction.tx_hash
        complete(action, AdminActionStatus.DONE, f"re-broadcast nonce {transaction.nonce}")
        return True, transaction.raw_tx
    if action.status == AdminActionStatus.PENDING:
        _sign_replacement(action, transaction, account, chain_id)
        return True, action.raw_tx
    return False, None  # replacement already out; recovery broadcasts it until one is mined


def _sign_replacement(
    action: AdminAction, transaction: ChainTransaction, account: LocalAccount, chain_id: int
) -> None:
    fields = {
        "to": account.address,
        "value": 0,
        "nonce": transaction.nonce,
        "gas": TRANSFER_GAS,
        "gasPrice": 0,
        "chainId": chain_id,
    }
    signed = account.sign_transaction(cast(dict[str, Any], fields))
    action.raw_tx = bytes(signed.raw_transaction)
    action.tx_hash = signed.hash.to_0x_hex()
    action.status = AdminActionStatus.SENT
    action.detail = f"replacement for {transaction.tx_hash} at nonce {transaction.nonce}"


def _close_on_final(action: AdminAction, operation: Operation) -> None:
    if action.action == AdminActionKind.CANCEL and operation.error_code == errors.Cancelled.code:
        complete(action, AdminActionStatus.DONE, "cancelled")
    else:
        detail = f"the operation was already {operation.status}"
        complete(action, AdminActionStatus.TOO_LATE, detail)


def replacement_raw(session: Session, transaction_id: int) -> bytes | None:
    """The cancel replacement to broadcast in place of transaction `transaction_id`, if any."""
    return session.scalars(
        select(AdminAction.raw_tx)
        .join(Operation, Operation.id == AdminAction.operation_id)
        .where(Operation.transaction_id == transaction_id)
        .where(AdminAction.action == AdminActionKind.CANCEL)
        .where(AdminAction.status == AdminActionStatus.SENT)
        .limit(1)
    ).first()


def cancelled_outcome(session: Session, operation: Operation) -> Outcome | None:
    """For an operation whose transaction lost its nonce and that the chain never applied:
    `cancelled` if an operator's cancel is in flight (closing it), else None."""
    action = session.scalars(
        select(AdminAction)
        .where(AdminAction.operation_id == operation.id)
        .where(AdminAction.action == AdminActionKind.CANCEL)
        .where(AdminAction.status.in_(OPEN_STATUSES))
        .limit(1)
    ).first()
    if action is None:
        return None
    complete(action, AdminActionStatus.DONE, f"replacement {action.tx_hash} took the nonce")
    return cancelled_by(action)


def cancelled_by(action: AdminAction) -> Outcome:
    """The outcome of an operation an operator cancelled."""
    detail = f"cancelled by {action.actor}: {action.reason}"
    return Outcome(False, error_code=errors.Cancelled.code, error_detail=detail)
