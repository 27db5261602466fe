"""Settlement, seen by brands: their liability reports, their statements, and their
on-chain acknowledgement of a settled period (docs/api.md, "Settlement").

**Periods** are named by their on-chain id, the local calendar date as `yyyymmdd`
(`20261122`). A period is *settled* once its run has anchored its statements (or completed
without an anchor): `settlement_runs.statements_json` then holds the exact bytes whose
keccak256 is the anchored `statementsHash`, and those bytes are what the gateway serves.

**Reports** are accepted, and replaced, until the period is reconciled; from then on the
settlement run has frozen them into its results (`alliance.db.reports`).

**Acknowledgements** are operations of kind `acknowledgement`, sent by the brand's admin
key through the pipeline like a pair policy, so their nonces never collide with that key's
other transactions and a signed transaction survives a crash (recovery re-sends it or
settles it from the anchor's own record). The `settlement_acknowledgements` row and the
operation are committed together before anything is sent. A new request reads the chain
first (`isAcknowledged`) and asks for a send only when the chain has no acknowledgement and
no earlier operation is still on its way, so the brand's acknowledgement is sent once.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from eth_utils import keccak
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from alliance.db.models import Operation, OperationKind, OperationStatus
from alliance.db.reports import lock_period_reports, period_is_frozen, record_brand_report
from alliance.db.session import unit_of_work
from alliance.db.settlement import (
    Acknowledgement,
    BrandReport,
    RunStatus,
    SettlementRun,
)
from alliance.statements import brand_statement, statements_csv
from gateway import errors
from gateway.errors import gateway_error
from gateway.ledger import CHAIN_DOWN, Ledger
from gateway.services.operations import create_operation

InvalidPeriod = gateway_error("invalid_period", "The period is not a yyyymmdd calendar date.")
PeriodClosed = gateway_error("period_closed", "The period is reconciled: its reports are frozen.")
PeriodNotSettled = gateway_error("period_not_settled", "The period has no statements yet.")
PeriodNotAnchored = gateway_error("period_not_anchored", "The period is not anchored on chain.")

PERIOD_PATTERN = re.compile(r"[0-9]{8}")
SETTLED = (RunStatus.ANCHORED, RunStatus.COMPLETE)
POLL_S = 0.1
"""How often a request waiting for its acknowledgement re-reads the database."""


def parse_period_id(text: str) -> int:
    """The period id `yyyymmdd` (a real calendar date), or `invalid_period`."""
    if PERIOD_PATTERN.fullmatch(text) is None:
        raise InvalidPeriod(f"period {text[:16]!r} is not yyyymmdd (e.g. 20261122)")
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise InvalidPeriod(f"period {text} is not a calendar date") from None
    return int(text)


# ------------------------------------------------------------------ brand reports


def record_report(
    session: Session, period_id: int, brand_code: str, liability_points: int, client_id: str
) -> BrandReport:
    """Store or replace the brand's reported liability; `period_closed` once reconciled."""
    lock_period_reports(session, period_id)
    if period_is_frozen(session, period_id):
        raise PeriodClosed(f"period {period_id} is reconciled; its reports are frozen")
    try:
        with session.begin_nested():
            record_brand_report(session, period_id, brand_code, liability_points, client_id)
    except IntegrityError:
        # Another request of the brand stored the period's first report meanwhile
        # (PostgreSQL): this one replaces it, as if it had come second.
        record_brand_report(session, period_id, brand_code, liability_points, client_id)
    session.flush()
    return session.get_one(BrandReport, (period_id, brand_code))


# ------------------------------------------------------------------ statements


@dataclass(frozen=True)
class PublishedPeriod:
    """A settled period: the statements file exactly as hashed, and its anchor."""

    period_id: int
    status: str
    closing_block: int
    balances_root: str | None
    statements_hash: str
    anchor_tx: str | None
    statements: bytes

    @property
    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.statements)
        return document

    @property
    def header(self) -> dict[str, Any]:
        """What ties a statement to the chain: the hash of the file and its anchor."""
        return {
            "status": self.status,
            "statements_hash": self.statements_hash,
            "anchor_tx": self.anchor_tx,
        }


def published_period(session: Session, period_id: int) -> PublishedPeriod:
    """The settled period, or `period_not_settled`."""
    run = session.get(SettlementRun, period_id)
    if run is None or run.status not in SETTLED or run.statements_json is None:
        raise PeriodNotSettled(f"period {period_id} has no published statements")
    assert run.statements_hash is not None, "statements are recorded with their hash"
    statements = run.statements_json.encode()
    # Checked again on the way out: the bytes served are the bytes anchored.
    assert "0x" + keccak(statements).hex() == run.statements_hash, period_id
    return PublishedPeriod(
        period_id=run.period_id,
        status=run.status,
        closing_block=run.closing_block,
        balances_root=run.balances_root,
        statements_hash=run.statements_hash,
        anchor_tx=run.anchor_tx,
        statements=statements,
    )


def statement_of(
    published: PublishedPeriod, brand_code: str, caller_brand: str | None
) -> dict[str, Any]:
    """One brand's statement with the period header. A brand reads only its own (another
    brand's is `not_found`, its existence undisclosed); None: operators and auditors."""
    document = published.document
    if (caller_brand is not None and caller_brand != brand_code) or brand_code not in {
        brand["brand"] for brand in document["brands"]
    }:
        raise errors.NotFound(f"no statement of {brand_code!r} for period {published.period_id}")
    return brand_statement(document, brand_code) | published.header


def statement_csv(statement: dict[str, Any]) -> str:
    """The brand's row of `statements.csv` (same columns), with its header line."""
    return statements_csv([statement["brand"]])


def report_file(data_dir: Path, period_id: int) -> Path:
    """The period's `report.html`, or `not_found` if this gateway cannot see it (the
    settlement service writes it under the shared data directory)."""
    path = data_dir / "settlement" / str(period_id) / "report.html"
    if not path.is_file():
        raise errors.NotFound(f"report.html of period {period_id} is not available here")
    return path


# ------------------------------------------------------------------ acknowledgements


@dataclass(frozen=True)
class AcknowledgementView:
    """Where a brand's acknowledgement of a period stands."""

    period_id: int
    brand: str
    status: str
    """`acknowledged` (on chain), `pending` (being sent) or `failed` (the chain refused)."""
    transaction_hash: str | None
    operation_id: int | None
    acknowledged_by: str
    created_at: datetime
    error_code: str | None = None
    error_detail: str | None = None


def chain_acknowledgement(
    ledger: Ledger, period_id: int, brand_code: str, from_block: int
) -> dict[str, Any] | None:
    """The chain's record of the acknowledgement (None: none), or `chain_unavailable`."""
    try:
        return ledger.acknowledgement(period_id, brand_code, from_block)
    except CHAIN_DOWN:
        raise errors.ChainUnavailable("the chain is unreachable") from None


def anchored_period(session: Session, period_id: int) -> SettlementRun:
    """The period's run if it is anchored (`period_not_settled`, `period_not_anchored`)."""
    published_period(session, period_id)
    run = session.get_one(SettlementRun, period_id)
    if run.anchor_tx is None:
        raise PeriodNotAnchored(f"period {period_id} was settled without an on-chain anchor")
    return run


def request_acknowledgement(
    session: Session,
    ledger: Ledger,
    period_id: int,
    brand_code: str,
    client_id: str,
    on_chain: dict[str, Any] | None,
) -> None:
    """Record the brand's intent to acknowledge and, unless the chain already has it
    (`on_chain`, read just before) or an earlier send is on its way, the operation that
    sends it. The caller commits; the pipeline sends after the commit."""
    # Lock the run row (PostgreSQL) so two first requests of the brand queue here.
    session.get(SettlementRun, period_id, with_for_update=True)
    run = anchored_period(session, period_id)
    row = session.get(Acknowledgement, (period_id, brand_code))
    if row is None:
        row = Acknowledgement(period_id=period_id, brand_code=brand_code, acknowledged_by=client_id)
        session.add(row)
    if row.transaction_hash is not None:
        return
    if on_chain is not None:
        row.transaction_hash = on_chain["tx_hash"]
        return
    latest = _latest_operation(session, period_id, brand_code)
    if latest is not None and latest.status != OperationStatus.FAILED:
        return  # on its way, or confirmed (recorded when the request settles the row)
    create_operation(
        session,
        kind=OperationKind.ACKNOWLEDGEMENT,
        brand_code=brand_code,
        member=None,
        params={
            "period_id": period_id,
            "token": ledger.brand(brand_code).address,
            "closing_block": run.closing_block,
        },
    )


def settle_acknowledgement(
    sessions: sessionmaker[Session],
    ledger: Ledger,
    period_id: int,
    brand_code: str,
    wait_s: float,
) -> AcknowledgementView:
    """Wait up to `wait_s` for the acknowledgement's operation to end, record its
    transaction, and return where the acknowledgement stands. A send the chain refused as
    already acknowledged is read back from the chain: the brand's acknowledgement exists,
    so it counts as done."""
    deadline = time.monotonic() + wait_s
    while True:
        with sessions() as session:
            latest = _latest_operation(session, period_id, brand_code)
            ended = latest is None or OperationStatus(latest.status).is_final
            refused_as_done = (
                latest is not None and latest.error_code == errors.PeriodAlreadyAcknowledged.code
            )
            closing_block = session.get_one(SettlementRun, period_id).closing_block
        if ended or time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    on_chain = None
    if refused_as_done:
        try:
            on_chain = ledger.acknowledgement(period_id, brand_code, closing_block)
        except CHAIN_DOWN:
            on_chain = None  # the next request reads it again
    with unit_of_work(sessions) as session:
        return _settle_row(session, period_id, brand_code, on_chain)


def acknowledgement_view(session: Session, period_id: int, brand_code: str) -> AcknowledgementView:
    """The brand's acknowledgement of the period as recorded, or `not_found`."""
    row = session.get(Acknowledgement, (period_id, brand_code))
    if row is None:
        raise errors.NotFound(f"{brand_code} has not acknowledged period {period_id}")
    latest = _latest_operation(session, period_id, brand_code)
    status, error_code, error_detail = "acknowledged", None, None
    if row.transaction_hash is None:
        assert latest is not None, "an unsent acknowledgement always has its operation"
        status = "failed" if latest.status == OperationStatus.FAILED else "pending"
        if status == "failed":
            error_code, error_detail = latest.error_code, latest.error_detail
    return AcknowledgementView(
        period_id=period_id,
        brand=brand_code,
        status=status,
        transaction_hash=row.transaction_hash,
        operation_id=latest.id if latest is not None else None,
        acknowledged_by=row.acknowledged_by,
        created_at=row.created_at,
        error_code=error_code,
        error_detail=error_detail,
    )


def _settle_row(
    session: Session, period_id: int, brand_code: str, on_chain: dict[str, Any] | None
) -> AcknowledgementView:
    row = session.get_one(Acknowledgement, (period_id, brand_code))
    if row.transaction_hash is None:
        latest = _latest_operation(session, period_id, brand_code)
        if latest is not None and latest.status == OperationStatus.CONFIRMED:
            assert latest.result is not None, latest.id
            row.transaction_hash = latest.result["tx_hash"]
        elif on_chain is not None:
            row.transaction_hash = on_chain["tx_hash"]
    session.flush()
    return acknowledgement_view(session, period_id, brand_code)


def _latest_operation(session: Session, period_id: int, brand_code: str) -> Operation | None:
    """The brand's newest acknowledgement operation for the period. Operations carry the
    period in their parameters; a brand has about one per period, so they are matched here
    rather than through a JSON query that differs between SQLite and PostgreSQL."""
    operations = session.scalars(
        select(Operation)
        .where(Operation.kind == OperationKind.ACKNOWLEDGEMENT)
        .where(Operation.brand_code == brand_code)
        .order_by(Operation.id.desc())
    )
    for operation in operations:
        if operation.params.get("period_id") == period_id:
            return operation
    return None
