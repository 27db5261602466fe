"""Fraud alerts: list, acknowledge, and freeze a member from an alert with two approvals.

**Two approvals, two freezers.** A freeze is asked for by one API principal and approved by
a second, *different* principal (a different `client_id`: the operator and the brand, or two
clients of the brand). The exchange itself needs two different holders of the brand's
freezer role (`<brand>.freezer_a`, `<brand>.freezer_b`): the first approval sends the first
freezer's `setFrozen` (the on-chain request), the second approval the second freezer's (which
freezes). So the chain shows both steps, each tied to one approval.

**Crash and retry safety.** The database records each approval before anything is sent;
the chain step (`drive_freeze`) then reads the chain first (`isFrozen`, `freezeRequestedBy`)
and only sends what is still missing, so repeating it after a crash, a timeout or an
unreachable node never sends a step twice (a second identical call would revert anyway).
A step that failed is driven again in the background (`gateway.freezes.FreezeDriver`,
every `freeze_retry_s`) until the chain shows the member frozen; repeating the approval
retries at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alliance.db.base import utc_now
from alliance.db.risk import (
    AlertStatus,
    FraudAlert,
    FraudAlertBrand,
    FreezeStatus,
    MemberFreeze,
)
from alliance.db.session import unit_of_work
from alliance.errors import AllianceError
from gateway import errors
from gateway.errors import gateway_error
from gateway.ledger import CHAIN_DOWN, Ledger

FreezeSelfApproval = gateway_error(
    "freeze_self_approval", "The second approval must come from a different principal."
)
FreezeExists = gateway_error("freeze_exists", "A freeze of this member at this brand exists.")
FreezeBrandNotInAlert = gateway_error(
    "freeze_brand_not_in_alert", "The brand to freeze at is not one of the alert's brands."
)

FREEZE_ID_PREFIX = "frz_"
ZERO_ADDRESS = "0x" + "00" * 20
FIRST_FREEZER, SECOND_FREEZER = "freezer_a", "freezer_b"
ERROR_CHARS_MAX = 500
ALERT_ID_MAX = 2**31 - 1
"""Alert ids are 32-bit integers on every backend."""


def list_alerts(
    session: Session,
    brand_code: str | None,
    *,
    status: str | None,
    period_id: int | None,
    cursor: int | None,
    limit: int,
) -> tuple[list[FraudAlert], int | None]:
    """Alerts newest first (by id), those involving `brand_code` only when given; and the
    cursor of the next page (None on the last)."""
    query = select(FraudAlert).order_by(FraudAlert.id.desc()).limit(limit + 1)
    if brand_code is not None:
        mine = select(FraudAlertBrand.alert_id).where(FraudAlertBrand.brand_code == brand_code)
        query = query.where(FraudAlert.id.in_(mine))
    if status is not None:
        query = query.where(FraudAlert.status == status)
    if period_id is not None:
        query = query.where(FraudAlert.period_id == period_id)
    if cursor is not None and cursor <= ALERT_ID_MAX:
        # A larger cursor excludes no id; binding it would overflow PostgreSQL's integer.
        query = query.where(FraudAlert.id < cursor)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    return rows[:limit], rows[limit - 1].id if more else None


def get_alert(session: Session, public_id: str, brand_code: str | None) -> FraudAlert:
    """The alert, if `brand_code` is one of its brands (None: operators and auditors)."""
    alert = session.scalars(select(FraudAlert).where(FraudAlert.public_id == public_id)).first()
    if alert is None or (brand_code is not None and brand_code not in alert.brand_codes):
        raise errors.NotFound(f"no alert {public_id}")
    return alert


def acknowledge(
    session: Session, public_id: str, brand_code: str | None, client_id: str
) -> FraudAlert:
    """Mark the alert reviewed (once: a repeat keeps the first acknowledgement)."""
    alert = get_alert(session, public_id, brand_code)
    if alert.status != AlertStatus.ACKNOWLEDGED:
        alert.status = AlertStatus.ACKNOWLEDGED
        alert.acknowledged_by = client_id
        alert.acknowledged_at = utc_now()
    return alert


def freezes_of(session: Session, alert: FraudAlert) -> list[MemberFreeze]:
    return list(
        session.scalars(
            select(MemberFreeze).where(MemberFreeze.alert_id == alert.id).order_by(MemberFreeze.id)
        )
    )


def request_freeze(
    session: Session,
    public_id: str,
    freeze_brand: str,
    caller_brand: str | None,
    client_id: str,
) -> MemberFreeze:
    """The first approval: record a freeze of the alert's member at `freeze_brand`. A brand
    client may only freeze at its own brand."""
    alert = get_alert(session, public_id, caller_brand)
    if caller_brand is not None and freeze_brand != caller_brand:
        raise errors.Forbidden("a brand can only freeze members at its own brand")
    if freeze_brand not in alert.brand_codes:
        raise FreezeBrandNotInAlert(f"the alert involves {', '.join(alert.brand_codes)}")
    existing = session.scalars(
        select(MemberFreeze)
        .where(MemberFreeze.alert_id == alert.id)
        .where(MemberFreeze.brand_code == freeze_brand)
    ).first()
    if existing is not None:
        raise FreezeExists(
            f"freeze {existing.public_id} exists; approve it",
            extra={"freeze_id": existing.public_id},
        )
    freeze = MemberFreeze(
        public_id=FREEZE_ID_PREFIX + secrets.token_hex(12),
        alert_id=alert.id,
        brand_code=freeze_brand,
        member_address=alert.member_address,
        status=FreezeStatus.REQUESTED,
        requested_by=client_id,
        requested_at=utc_now(),
    )
    session.add(freeze)
    session.flush()
    return freeze


def get_freeze(session: Session, public_id: str, brand_code: str | None) -> MemberFreeze:
    """The freeze, if `brand_code` is its brand (None: operators and auditors)."""
    freeze = session.scalars(
        select(MemberFreeze).where(MemberFreeze.public_id == public_id)
    ).first()
    if freeze is None or (brand_code is not None and freeze.brand_code != brand_code):
        raise errors.NotFound(f"no freeze {public_id}")
    return freeze


def approve_freeze(
    session: Session, public_id: str, brand_code: str | None, client_id: str
) -> MemberFreeze:
    """The second approval, by a principal other than the requester. Approving again (the
    same approver) changes nothing; the caller then re-drives the chain step."""
    freeze = get_freeze(session, public_id, brand_code)
    if client_id == freeze.requested_by:
        raise FreezeSelfApproval(f"{client_id} requested this freeze and cannot approve it")
    if freeze.status == FreezeStatus.REQUESTED:
        freeze.status = FreezeStatus.APPROVED
        freeze.approved_by = client_id
        freeze.approved_at = utc_now()
    return freeze


@dataclass(frozen=True)
class ChainStep:
    """What a drive did on chain, recorded afterwards in a short unit of work."""

    request_tx: str | None = None
    approve_tx: str | None = None
    applied: bool = False
    error: str | None = None


def drive_freeze(sessions: sessionmaker[Session], ledger: Ledger, freeze_id: int) -> None:
    """Send whatever chain step the freeze's approvals call for and the chain lacks, then
    record it. The chain is called outside any database transaction (SQLite's write lock
    is never held across a receipt wait). Never raises for an unreachable or refusing
    chain: the freeze keeps `last_error` and the next drive tries again."""
    with sessions() as session:
        freeze = session.get_one(MemberFreeze, freeze_id)
        if freeze.status == FreezeStatus.APPLIED:
            return
        brand_code, member, status = freeze.brand_code, freeze.member_address, freeze.status
    try:
        step = _chain_step(ledger, brand_code, member, approved=status == FreezeStatus.APPROVED)
    except CHAIN_DOWN:
        step = ChainStep(error="the chain is unreachable")
    except AllianceError as error:
        step = ChainStep(error=error.describe()[:ERROR_CHARS_MAX])
    with unit_of_work(sessions) as session:
        _record(session.get_one(MemberFreeze, freeze_id), step)


def unfinished_freezes(session: Session, limit: int) -> list[int]:
    """Freezes whose chain step is still due: approved but not applied, or requested while
    the first step failed (a requested freeze waiting for its second approval is not)."""
    due = (MemberFreeze.status == FreezeStatus.APPROVED) | (
        (MemberFreeze.status == FreezeStatus.REQUESTED) & MemberFreeze.last_error.is_not(None)
    )
    statement = select(MemberFreeze.id).where(due).order_by(MemberFreeze.id).limit(limit)
    return list(session.scalars(statement))


def _chain_step(
    ledger: Ledger, brand_code: str, member_address: str, *, approved: bool
) -> ChainStep:
    exchange = ledger.exchange
    token = ledger.brand(brand_code).address
    member = ledger.w3.to_checksum_address(member_address)
    if ledger.client.call(exchange.functions.isFrozen(token, member)):
        return ChainStep(applied=True)
    first = ledger.keys(f"{brand_code}.{FIRST_FREEZER}")
    second = ledger.keys(f"{brand_code}.{SECOND_FREEZER}")
    request_tx = None
    pending = ledger.client.call(exchange.functions.freezeRequestedBy(token, member, True))
    if pending.lower() == ZERO_ADDRESS:
        receipt = ledger.client.transact(first, exchange.functions.setFrozen(token, member, True))
        request_tx = receipt["transactionHash"].to_0x_hex()
        pending = first.address
    if not approved:
        return ChainStep(request_tx=request_tx)
    # Whichever freezer did not make the pending request confirms it.
    approver = second if pending.lower() == first.address.lower() else first
    receipt = ledger.client.transact(approver, exchange.functions.setFrozen(token, member, True))
    approve_tx = receipt["transactionHash"].to_0x_hex()
    return ChainStep(request_tx=request_tx, approve_tx=approve_tx, applied=True)


def _record(freeze: MemberFreeze, step: ChainStep) -> None:
    if freeze.status == FreezeStatus.APPLIED:
        return  # a concurrent drive finished first; this one's revert says nothing new
    freeze.request_tx = step.request_tx or freeze.request_tx
    freeze.approve_tx = step.approve_tx or freeze.approve_tx
    freeze.last_error = step.error
    if step.applied and freeze.status == FreezeStatus.APPROVED:
        freeze.status = FreezeStatus.APPLIED
        freeze.applied_at = utc_now()
