"""Deposits, withdrawals, quotes, conversions and gifts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.api.deps import Caller, Context, IdempotencyKeyHeader
from gateway.api.idempotent import batched_operation_post, cached_member, operation_post
from gateway.schemas import (
    ConversionCreate,
    DepositCreate,
    GiftCreate,
    OperationPublic,
    QuoteCreate,
    QuotePublic,
    WithdrawalCreate,
)
from gateway.services import movements, signed_conversions

router = APIRouter(prefix="/v1", tags=["movements"])
ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": OperationPublic, "description": "Accepted; completes asynchronously."}
}


@router.post("/deposits", status_code=202, response_model=OperationPublic, responses=ACCEPTED)
async def deposit(
    body: DepositCreate,
    request: Request,
    context: Context,
    caller: Caller,
    key: IdempotencyKeyHeader = None,
) -> Response:
    """Move points from the brand's own programme onto the ledger (mint)."""
    brand = caller.require_brand()
    return await operation_post(
        context,
        request,
        caller,
        key,
        body.model_dump(),
        lambda session: movements.create_deposit(session, context, brand, body),
    )


@router.post("/withdrawals", status_code=202, response_model=OperationPublic, responses=ACCEPTED)
async def withdraw(
    body: WithdrawalCreate,
    request: Request,
    context: Context,
    caller: Caller,
    key: IdempotencyKeyHeader = None,
) -> Response:
    """Move points from the ledger back into the brand's own programme (burn)."""
    brand = caller.require_brand()
    return await operation_post(
        context,
        request,
        caller,
        key,
        body.model_dump(),
        lambda session: movements.create_withdrawal(session, context, brand, body),
        prepare=lambda: movements.check_withdrawal(context, brand, body),
    )


@router.post("/quotes", status_code=201, response_model=QuotePublic)
def quote(body: QuoteCreate, context: Context, caller: Caller) -> QuotePublic:
    """Price a conversion at the rates in force; the quote is good until `expires_at`.
    (Quotes move nothing, so they need no Idempotency-Key: a self-custody member's quote
    records only the reservation of its request id, and a repeat is another quote.)"""
    brand = caller.require_brand()
    priced, quote_id, typed_data = signed_conversions.quote(context, brand, body)
    return QuotePublic(
        quote_id=quote_id,
        from_brand=priced.from_brand,
        to_brand=priced.to_brand,
        amount_in=priced.amount_in,
        amount_out=priced.amount_out,
        fee_points=priced.fee_points,
        min_amount_out=priced.min_amount_out,
        rate_from_units=str(priced.rate_from_units),
        rate_to_units=str(priced.rate_to_units),
        fee_bps=priced.fee_bps,
        expires_at=datetime.fromtimestamp(priced.expires_at, UTC),
        request_id=str(priced.request_id) if priced.request_id is not None else None,
        typed_data=typed_data,
    )


@router.post("/conversions", status_code=201, response_model=OperationPublic, responses=ACCEPTED)
async def convert(
    body: ConversionCreate,
    request: Request,
    context: Context,
    caller: Caller,
    key: IdempotencyKeyHeader = None,
) -> Response:
    """Convert a member's points between brands; 201 when final within the wait, else 202.
    A self-custody member's conversion carries their signature over a quote (recorded one
    at a time: it has its own checks and its quote's request id)."""
    brand = caller.require_brand()
    if body.signature is not None:
        return await operation_post(
            context,
            request,
            caller,
            key,
            body.model_dump(),
            lambda session: signed_conversions.create_conversion(session, context, brand, body),
            wait_s=context.settings.sync_wait_s,
            prepare=lambda: signed_conversions.check_conversion(context, brand, body),
        )

    async def prepare() -> movements.PreparedConversion:
        member = await cached_member(context, body.member_id, brand)
        prepared = movements.prepare_conversion(context, brand, member, body)
        await movements.check_conversion(context, prepared)
        return prepared

    return await batched_operation_post(
        context,
        request,
        caller,
        key,
        body.model_dump(),
        prepare,
        wait_s=context.settings.sync_wait_s,
    )


@router.post("/gifts", status_code=202, response_model=OperationPublic, responses=ACCEPTED)
async def gift(
    body: GiftCreate,
    request: Request,
    context: Context,
    caller: Caller,
    key: IdempotencyKeyHeader = None,
) -> Response:
    """Gift points to another member of the same brand, if the brand allows it."""
    brand = caller.require_brand()
    return await operation_post(
        context,
        request,
        caller,
        key,
        body.model_dump(),
        lambda session: movements.create_gift(session, context, brand, body),
        prepare=lambda: movements.check_gift(context, brand, body),
    )
