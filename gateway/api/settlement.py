"""Settlement endpoints: a brand's reported liability, its statements, the published files,
and its on-chain acknowledgement of a settled period (docs/api.md, "Settlement").

`{period_id}` is the period's on-chain id, the local calendar date as `yyyymmdd`. Brands
write for themselves (operators and auditors: 403) and read their own statement (another
brand's answers 404); operators and auditors read every statement. The published files
(`statements.json`, `report.html`) cover the whole alliance and every client may read them:
the anchored hash is of the whole file, so each brand needs all of it to check the anchor.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from alliance.db.models import OperationKind
from gateway import errors
from gateway.api.deps import Caller, Context, IdempotencyKeyHeader
from gateway.api.idempotent import response_post
from gateway.pipeline.calls import signer_name
from gateway.schemas import Strict
from gateway.services import settlement

router = APIRouter(prefix="/v1/settlement", tags=["settlement"])

UINT256_MAX = 2**256 - 1
CSV_TYPE = "text/csv"
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {CSV_TYPE: {"schema": {"type": "string"}}}}
}


class LiabilityReportCreate(Strict):
    liability_points: int = Field(
        ge=0,
        le=UINT256_MAX,
        strict=True,
        description="The brand's own total of its points outstanding at the period's close",
    )


class LiabilityReportPublic(BaseModel):
    period_id: int
    brand: str
    liability_points: int
    reported_by: str
    updated_at: datetime


class AcknowledgementPublic(BaseModel):
    period_id: int
    brand: str
    status: Literal["acknowledged", "pending"]
    transaction_hash: str | None = Field(description="The acknowledge call on chain")
    operation_id: int | None = Field(
        description="The operation that sent it (kind acknowledgement)"
    )
    acknowledged_by: str
    created_at: datetime


@router.post("/periods/{period_id}/liability-report", response_model=LiabilityReportPublic)
def report_liability(
    period_id: str,
    body: LiabilityReportCreate,
    request: Request,
    context: Context,
    caller: Caller,
    key: IdempotencyKeyHeader,
) -> JSONResponse:
    """The calling brand's reported liability for the period; a later report replaces it
    until the period is reconciled (then 409 `period_closed`)."""
    brand = caller.require_brand()
    period = settlement.parse_period_id(period_id)

    def create(session: Session) -> tuple[int, dict[str, Any]]:
        report = settlement.record_report(
            session, period, brand, body.liability_points, caller.client_id
        )
        public = LiabilityReportPublic(
            period_id=report.period_id,
            brand=report.brand_code,
            liability_points=report.liability_points,
            reported_by=report.reported_by,
            updated_at=report.updated_at,
        )
        return 200, public.model_dump(mode="json")

    return response_post(context, request, caller, key, body.model_dump(), create)


@router.get(
    "/periods/{period_id}/statements/{brand}",
    responses=CSV_RESPONSE,
    response_model=dict[str, Any],
)
def read_statement(
    period_id: str,
    brand: str,
    context: Context,
    caller: Caller,
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """The brand's statement for the period: its figures, the flows and bilateral nets it is
    party to, and the header tying it to the chain (`statements_hash`, `anchor_tx`). As CSV
    (the brand's row of `statements.csv`) with `?format=csv` or `Accept: text/csv`."""
    period = settlement.parse_period_id(period_id)
    with context.sessions() as session:
        published = settlement.published_period(session, period)
    statement = settlement.statement_of(published, brand, caller.visible_brand())
    wants_csv = format == "csv" or (format is None and CSV_TYPE in (accept or ""))
    if wants_csv:
        return Response(settlement.statement_csv(statement), media_type=CSV_TYPE)
    return JSONResponse(statement)


@router.get(
    "/periods/{period_id}/statements.json",
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
def download_statements(period_id: str, context: Context, caller: Caller) -> Response:
    """The period's published `statements.json`, byte for byte: its keccak256 is the
    `statementsHash` anchored on chain (also sent as `Alliance-Statements-Hash`)."""
    period = settlement.parse_period_id(period_id)
    with context.sessions() as session:
        published = settlement.published_period(session, period)
    return Response(
        published.statements,
        media_type="application/json",
        headers={"Alliance-Statements-Hash": published.statements_hash},
    )


@router.get(
    "/periods/{period_id}/report.html",
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}},
)
def download_report(period_id: str, context: Context, caller: Caller) -> Response:
    """The period's human-readable report (flows, liability per brand, alerts)."""
    period = settlement.parse_period_id(period_id)
    with context.sessions() as session:
        settlement.published_period(session, period)
    path = settlement.report_file(context.core.data.data_dir, period)
    return FileResponse(path, media_type="text/html")


@router.post("/periods/{period_id}/acknowledgement", response_model=AcknowledgementPublic)
def acknowledge_period(
    period_id: str, request: Request, context: Context, caller: Caller, key: IdempotencyKeyHeader
) -> JSONResponse:
    """The calling brand acknowledges the anchored period on chain (its admin key calls
    `SettlementAnchor.acknowledge`). 200 once on chain, 202 while being sent; a repeat
    never sends a second acknowledgement."""
    brand = caller.require_brand()
    period = settlement.parse_period_id(period_id)
    with context.sessions() as session:
        run = settlement.anchored_period(session, period)
        closing_block = run.closing_block
    on_chain = settlement.chain_acknowledgement(context.ledger, period, brand, closing_block)

    def create(session: Session) -> tuple[int, dict[str, Any]]:
        settlement.request_acknowledgement(
            session, context.ledger, period, brand, caller.client_id, on_chain
        )
        return 200, {"period_id": period, "brand": brand}

    recorded = response_post(context, request, caller, key, {}, create)
    if "brand" not in json.loads(bytes(recorded.body)):
        return recorded
    if context.pipeline is not None:
        context.pipeline.wake(signer_name(OperationKind.ACKNOWLEDGEMENT, brand))
    view = settlement.settle_acknowledgement(
        context.sessions, context.ledger, period, brand, context.settings.sync_wait_s
    )
    if view.status == "failed":
        raise errors.ChainRejected(
            f"{view.error_code}: {view.error_detail}", extra={"operation_id": view.operation_id}
        )
    public = AcknowledgementPublic(
        period_id=view.period_id,
        brand=view.brand,
        status="acknowledged" if view.status == "acknowledged" else "pending",
        transaction_hash=view.transaction_hash,
        operation_id=view.operation_id,
        acknowledged_by=view.acknowledged_by,
        created_at=view.created_at,
    )
    return JSONResponse(
        public.model_dump(mode="json"), status_code=200 if view.status == "acknowledged" else 202
    )
