"""Fraud alerts and the member freezes asked for from them.

Brands see and act on the alerts that involve one of their brands (others answer 404);
operators see and act on all; auditors read only (their writes answer 403). A freeze needs
two different principals: one requests it, another approves it (see
`gateway.services.alerts` for how the approvals map to the brand's two freezer keys).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from alliance.db.models import ClientKind
from alliance.db.risk import AlertStatus, FraudAlert, FreezeStatus, MemberFreeze
from gateway.api.deps import Caller, Context, IdempotencyKeyHeader
from gateway.api.idempotent import response_post
from gateway.auth import Principal
from gateway.context import GatewayContext
from gateway.schemas import Strict
from gateway.services import alerts

router = APIRouter(prefix="/v1", tags=["alerts"])

Cursor = Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$", description="next_cursor")]
PERIOD_ID_MAX = 99_991_231


class FreezePublic(BaseModel):
    id: str
    alert_id: str
    brand: str
    member_address: str
    status: str = Field(description="requested, approved (chain step pending) or applied")
    requested_by: str
    requested_at: datetime
    approved_by: str | None = None
    approved_at: datetime | None = None
    request_tx: str | None = Field(default=None, description="The first freezer's call")
    approve_tx: str | None = Field(default=None, description="The second freezer's call")
    applied_at: datetime | None = None
    error: str | None = Field(default=None, description="Why the last chain step failed")


class AlertPublic(BaseModel):
    id: str
    period_id: int
    rule: str
    severity: str
    member_address: str
    brands: list[str]
    subject: str
    summary: str
    evidence: dict[str, Any]
    status: str
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    created_at: datetime
    freezes: list[FreezePublic]


class AlertPage(BaseModel):
    items: list[AlertPublic]
    next_cursor: str | None = None


class FreezeCreate(Strict):
    brand: str = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$", description="Brand to freeze at")


def freeze_public(freeze: MemberFreeze, alert_public_id: str) -> FreezePublic:
    return FreezePublic(
        id=freeze.public_id,
        alert_id=alert_public_id,
        brand=freeze.brand_code,
        member_address=freeze.member_address,
        status=freeze.status,
        requested_by=freeze.requested_by,
        requested_at=freeze.requested_at,
        approved_by=freeze.approved_by,
        approved_at=freeze.approved_at,
        request_tx=freeze.request_tx,
        approve_tx=freeze.approve_tx,
        applied_at=freeze.applied_at,
        error=freeze.last_error,
    )


def alert_public(session: Session, alert: FraudAlert) -> AlertPublic:
    return AlertPublic(
        id=alert.public_id,
        period_id=alert.period_id,
        rule=alert.rule,
        severity=alert.severity,
        member_address=alert.member_address,
        brands=alert.brand_codes,
        subject=alert.subject,
        summary=alert.summary,
        evidence=alert.evidence,
        status=alert.status,
        acknowledged_by=alert.acknowledged_by,
        acknowledged_at=alert.acknowledged_at,
        created_at=alert.created_at,
        freezes=[freeze_public(f, alert.public_id) for f in alerts.freezes_of(session, alert)],
    )


@router.get("/alerts", response_model=AlertPage)
def list_alerts(
    context: Context,
    caller: Caller,
    status: Annotated[AlertStatus | None, Query()] = None,
    period_id: Annotated[int | None, Query(ge=1, le=PERIOD_ID_MAX)] = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1)] = 50,
) -> AlertPage:
    """Alerts newest first; a brand sees those involving its brand."""
    with context.sessions() as session:
        rows, next_cursor = alerts.list_alerts(
            session,
            caller.visible_brand(),
            status=status,
            period_id=period_id,
            cursor=int(cursor) if cursor is not None else None,
            limit=min(limit, context.settings.page_size_max),
        )
        items = [alert_public(session, row) for row in rows]
    return AlertPage(items=items, next_cursor=str(next_cursor) if next_cursor else None)


@router.get("/alerts/{alert_id}", response_model=AlertPublic)
def read_alert(alert_id: str, context: Context, caller: Caller) -> AlertPublic:
    with context.sessions() as session:
        return alert_public(session, alerts.get_alert(session, alert_id, caller.visible_brand()))


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertPublic)
def acknowledge_alert(
    alert_id: str, request: Request, context: Context, caller: Caller, key: IdempotencyKeyHeader
) -> JSONResponse:
    """Mark the alert reviewed (brands and operators)."""
    caller.require(ClientKind.BRAND, ClientKind.OPERATOR)

    def create(session: Session) -> tuple[int, dict[str, Any]]:
        alert = alerts.acknowledge(session, alert_id, caller.visible_brand(), caller.client_id)
        return 200, alert_public(session, alert).model_dump(mode="json")

    return response_post(context, request, caller, key, {}, create)


@router.post("/alerts/{alert_id}/freezes", status_code=201, response_model=FreezePublic)
def request_freeze(
    alert_id: str,
    body: FreezeCreate,
    request: Request,
    context: Context,
    caller: Caller,
    key: IdempotencyKeyHeader,
) -> JSONResponse:
    """First approval of a freeze of the alert's member at `brand`: the brand's first freezer
    requests it on chain. A different principal approves it (`POST /v1/freezes/{id}/approve`)."""
    caller.require(ClientKind.BRAND, ClientKind.OPERATOR)

    def create(session: Session) -> tuple[int, dict[str, Any]]:
        freeze = alerts.request_freeze(
            session, alert_id, body.brand, caller.visible_brand(), caller.client_id
        )
        return 201, {"freeze_id": freeze.public_id}

    return _drive_and_render(context, request, caller, key, body.model_dump(), create)


@router.get("/freezes/{freeze_id}", response_model=FreezePublic)
def read_freeze(freeze_id: str, context: Context, caller: Caller) -> FreezePublic:
    with context.sessions() as session:
        freeze = alerts.get_freeze(session, freeze_id, caller.visible_brand())
        return freeze_public(freeze, session.get_one(FraudAlert, freeze.alert_id).public_id)


@router.post("/freezes/{freeze_id}/approve", response_model=FreezePublic)
def approve_freeze(
    freeze_id: str, request: Request, context: Context, caller: Caller, key: IdempotencyKeyHeader
) -> JSONResponse:
    """Second approval, by a different principal: the brand's second freezer confirms on
    chain and the member is frozen at the brand. 200 once applied; 202 while the chain step
    is pending (the gateway retries it in the background; repeating the approval retries at
    once)."""
    caller.require(ClientKind.BRAND, ClientKind.OPERATOR)

    def create(session: Session) -> tuple[int, dict[str, Any]]:
        freeze = alerts.approve_freeze(session, freeze_id, caller.visible_brand(), caller.client_id)
        return 200, {"freeze_id": freeze.public_id}

    return _drive_and_render(context, request, caller, key, {}, create)


def _drive_and_render(
    context: GatewayContext,
    request: Request,
    caller: Principal,
    key: str | None,
    body: dict[str, Any],
    create: Any,
) -> JSONResponse:
    """Record the approval idempotently (the stored answer names the freeze), then send the
    chain step it calls for and answer with the freeze as it now stands."""
    recorded = response_post(context, request, caller, key, body, create)
    pointer = json.loads(bytes(recorded.body))
    if "freeze_id" not in pointer:
        return recorded
    with context.sessions() as session:
        freeze_id = alerts.get_freeze(session, pointer["freeze_id"], None).id
    alerts.drive_freeze(context.sessions, context.ledger, freeze_id)
    with context.sessions() as session:
        freeze = session.get_one(MemberFreeze, freeze_id)
        public = freeze_public(freeze, session.get_one(FraudAlert, freeze.alert_id).public_id)
    status = recorded.status_code
    if status == 200 and public.status != FreezeStatus.APPLIED:
        status = 202
    return JSONResponse(public.model_dump(mode="json"), status_code=status)
