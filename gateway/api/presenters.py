"""Turning rows into public schemas (the only place that decides what a client sees)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.db.models import Member, Operation
from gateway.schemas import MemberPublic, OperationError, OperationPublic

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
)


def operation_public(session: Session, operation: Operation) -> OperationPublic:
    member = session.get(Member, operation.member_id) if operation.member_id else None
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
        member_id=member.public_id if member else None,
        request_id=str(operation.request_id) if operation.request_id is not None else None,
        params={k: v for k, v in operation.params.items() if k in PUBLIC_PARAMS},
        result=operation.result,
        error=error,
        created_at=operation.created_at,
        updated_at=operation.updated_at,
    )


def member_public(member: Member, brand_member_id: str | None = None) -> MemberPublic:
    return MemberPublic(
        id=member.public_id,
        address=member.address,
        custody=member.custody,
        brands=sorted(link.brand_code for link in member.links),
        brand_member_id=brand_member_id,
        created_at=member.created_at,
    )
