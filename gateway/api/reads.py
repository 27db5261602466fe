"""Reads (balances, history, rates, pair policies) and the receiving brand's pair-policy
update. Chain reads answer 503 `chain_unavailable` with Retry-After when the node is down."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gateway.api.deps import Caller, Context, IdempotencyKeyHeader
from gateway.api.idempotent import operation_post
from gateway.api.presenters import operation_public
from gateway.schemas import (
    BalancePublic,
    BalancesPublic,
    BrandCode,
    OperationPage,
    OperationPublic,
    PairPolicyPublic,
    PairPolicyUpdate,
    RatePublic,
)
from gateway.services import reads
from gateway.services.pair_policies import create_pair_policy

router = APIRouter(prefix="/v1", tags=["reads"])

HISTORY_LIMIT_DEFAULT = 50
Cursor = Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$", description="next_cursor")]
Limit = Annotated[int, Query(ge=1, description="Page size; capped at the server's maximum.")]


@router.get("/members/{member_id}/balances", response_model=BalancesPublic)
def read_balances(member_id: str, context: Context, caller: Caller) -> BalancesPublic:
    """The member's points and freeze flag at every brand (brands: their members only)."""
    with context.sessions() as session:
        member, balances = reads.member_balances(
            session, context.ledger, member_id, caller.visible_brand()
        )
    return BalancesPublic(
        member_id=member.public_id,
        balances=[BalancePublic.model_validate(b, from_attributes=True) for b in balances],
    )


@router.get("/members/{member_id}/history", response_model=OperationPage)
def read_history(
    member_id: str,
    context: Context,
    caller: Caller,
    cursor: Cursor = None,
    limit: Limit = HISTORY_LIMIT_DEFAULT,
) -> OperationPage:
    """The member's operations, newest first; a brand sees the operations it owns."""
    with context.sessions() as session:
        rows, next_cursor = reads.member_history(
            session,
            member_id,
            caller.visible_brand(),
            int(cursor) if cursor is not None else None,
            min(limit, context.settings.page_size_max),
        )
        items = [operation_public(session, row) for row in rows]
    return OperationPage(
        items=items, next_cursor=str(next_cursor) if next_cursor is not None else None
    )


@router.get("/rates", response_model=list[RatePublic])
def read_rates(context: Context, caller: Caller) -> list[RatePublic]:
    """Every brand's rate in force and pending schedule."""
    return [RatePublic.model_validate(r, from_attributes=True) for r in reads.rates(context.ledger)]


@router.get("/rates/{brand}", response_model=RatePublic)
def read_rate(brand: str, context: Context, caller: Caller) -> RatePublic:
    """One brand's rate in force and pending schedule."""
    return RatePublic.model_validate(reads.rate(context.ledger, brand), from_attributes=True)


@router.get("/pair-policies", response_model=list[PairPolicyPublic])
def read_pair_policies(
    context: Context, caller: Caller, to_brand: BrandCode | None = None
) -> list[PairPolicyPublic]:
    """The policy of every ordered pair of brands, or only of those into `to_brand`."""
    return [
        PairPolicyPublic.model_validate(policy, from_attributes=True)
        for policy in reads.pair_policies(context.ledger, to_brand)
    ]


@router.put(
    "/pair-policies/{from_brand}",
    status_code=201,
    response_model=OperationPublic,
    responses={202: {"model": OperationPublic, "description": "Accepted; not final yet."}},
)
async def update_pair_policy(
    from_brand: str,
    body: PairPolicyUpdate,
    request: Request,
    context: Context,
    caller: Caller,
    key: IdempotencyKeyHeader = None,
) -> Response:
    """Set the calling (receiving) brand's policy for conversions from `from_brand`:
    201 when applied within the wait, 202 while pending, the problem if the chain refused."""
    brand = caller.require_brand()
    return await operation_post(
        context,
        request,
        caller,
        key,
        body.model_dump(),
        lambda session: create_pair_policy(session, context, brand, from_brand, body),
        wait_s=context.settings.sync_wait_s,
    )
