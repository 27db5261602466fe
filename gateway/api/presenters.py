"""Turning rows into public schemas (the only place that decides what a client sees)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alliance.db.models import AdminAction, Member, Operation, OperationKind
from gateway.schemas import AdminActionPublic, MemberPublic, OperationError, OperationPublic

PUBLIC_PARAMS = (
    "amount",
    "amount_in",
    "min_amount_out",
    "from_brand",
    "to_brand",
    "source",
    "brand",
    "to_member_id",
    "from_member_id",
    "fee_bps",
    "enabled",
    "max_amount_out",
    "daily_cap",
    "quote_id",
    "step_name",
    "attempt",
)


def operation_public(session: Session, operation: Operation) -> OperationPublic:
    member = session.get(Member, operation.member_id) if operation.member_id else None
    public_id = member.public_id if member else None
    return operation_public_of(operation, public_id, _children(session, operation))


def operation_public_of(
    operation: Any, member_public_id: str | None, children: list[int] | None
) -> OperationPublic:
    """The view of an operation row (an `Operation`, or a Core row of its table), given its
    member's public id and, for a move, its steps."""
    error = (
        OperationError(code=operation.error_code, detail=operation.error_detail)
        if operation.error_code
        else None
    )
    return OperationPublic(
        id=operation.id,
        kind=operation.kind,
        status=operation.status,
        brand=operation.brand_code,
        member_id=member_public_id,
        request_id=str(operation.request_id) if operation.request_id is not None else None,
        params={k: v for k, v in operation.params.items() if k in PUBLIC_PARAMS},
        result=operation.result,
        error=error,
        parent_id=operation.parent_id,
        children=children,
        created_at=operation.created_at,
        updated_at=operation.updated_at,
    )


def _children(session: Session, operation: Operation) -> list[int] | None:
    if operation.kind != OperationKind.MOVE:
        return None
    return list(
        session.scalars(
            select(Operation.id).where(Operation.parent_id == operation.id).order_by(Operation.id)
        )
    )


def member_public(member: Member, brand_member_id: str | None = None) -> MemberPublic:
    return MemberPublic(
        id=member.public_id,
        address=member.address,
        custody=member.custody,
        wallet=member.wallet,
        brands=sorted(link.brand_code for link in member.links),
        brand_member_id=brand_member_id,
        created_at=member.created_at,
    )


def admin_action_public(session: Session, action: AdminAction) -> AdminActionPublic:
    """An operator action with its operation (the replacement's raw bytes stay inside)."""
    return AdminActionPublic(
        id=action.id,
        operation_id=action.operation_id,
        action=action.action,
        status=action.status,
        actor=action.actor,
        reason=action.reason,
        detail=action.detail,
        tx_hash=action.tx_hash,
        created_at=action.created_at,
        completed_at=action.completed_at,
        operation=operation_public(session, session.get_one(Operation, action.operation_id)),
    )
