"""Operator actions on operations: list the stuck ones, cancel, re-submit.

Every request is recorded as an `admin_actions` row (who, why, what became of it).
An `accepted` operation has nothing on chain yet, so a cancel fails it `cancelled` at once
(under a row lock the submitter also takes before signing). A `submitted` operation's
transaction holds a nonce of a key only its submitter may use, so the action is left
`pending` for that submitter, which carries it out at its next step
(`gateway.pipeline.interventions`).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from alliance.db.models import (
    AdminAction,
    AdminActionKind,
    AdminActionStatus,
    Operation,
    OperationStatus,
)
from gateway import errors
from gateway.pipeline import interventions
from gateway.services.operations import OPERATION_ID_MAX, stuck_operations

FinalHook = Callable[[Session, Operation], None]


def stuck(session: Session, older_than_s: float, limit: int) -> list[Operation]:
    """Operations not final `older_than_s` seconds after they were accepted, oldest first."""
    return stuck_operations(session, older_than_s, limit)


def request_action(
    session: Session,
    operation_id: int,
    kind: AdminActionKind,
    actor: str,
    reason: str,
    on_final: FinalHook,
) -> AdminAction:
    """Record an operator's cancel or re-submit of an operation and do what needs no key.

    `operation_not_cancellable` (409) when the operation is final, is a move (cancel its
    current step instead), or already has an action in progress."""
    operation = (
        session.scalars(
            select(Operation).where(Operation.id == operation_id).with_for_update(of=Operation)
        ).first()
        if 1 <= operation_id <= OPERATION_ID_MAX  # a larger id overflows the driver
        else None
    )
    if operation is None:
        raise errors.NotFound(f"no operation {operation_id}")
    _require_actionable(session, operation)
    action = AdminAction(
        operation_id=operation.id,
        action=kind,
        status=AdminActionStatus.PENDING,
        actor=actor,
        reason=reason,
    )
    session.add(action)
    if operation.status == OperationStatus.ACCEPTED:
        _act_before_signing(session, operation, action, on_final)
    session.flush()
    return action


def _require_actionable(session: Session, operation: Operation) -> None:
    if OperationStatus(operation.status).is_final:
        raise errors.OperationNotCancellable(
            f"operation {operation.id} is already {operation.status}"
        )
    if operation.signer is None:
        raise errors.OperationNotCancellable(
            f"operation {operation.id} is a {operation.kind}: act on its current step instead"
        )
    if open_action(session, operation.id) is not None:
        raise errors.OperationNotCancellable(
            f"an earlier action on operation {operation.id} is still in progress"
        )


def _act_before_signing(
    session: Session, operation: Operation, action: AdminAction, on_final: FinalHook
) -> None:
    if action.action == AdminActionKind.RESUBMIT:
        interventions.complete(action, AdminActionStatus.DONE, "not signed yet: nothing to re-send")
        return
    outcome = interventions.cancelled_by(action)
    operation.status = OperationStatus.FAILED
    operation.error_code = outcome.error_code
    operation.error_detail = outcome.error_detail
    interventions.complete(action, AdminActionStatus.DONE, "cancelled before it was signed")
    on_final(session, operation)


def open_action(session: Session, operation_id: int) -> AdminAction | None:
    """The operation's action still waiting for its submitter, if any."""
    return session.scalars(
        select(AdminAction)
        .where(AdminAction.operation_id == operation_id)
        .where(AdminAction.status.in_(interventions.OPEN_STATUSES))
        .limit(1)
    ).first()


def get_action(session: Session, action_id: int) -> AdminAction:
    """An admin action by id."""
    action = session.get(AdminAction, action_id) if 1 <= action_id <= OPERATION_ID_MAX else None
    if action is None:
        raise errors.NotFound(f"no admin action {action_id}")
    return action
