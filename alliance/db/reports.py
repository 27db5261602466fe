"""Brand-reported liability totals: what a brand says it owes, compared at the close.

The gateway records reports (brands upload them); the settlement run reads and freezes them:
the helpers live in the core so neither app imports the other.

A brand may report (and correct) its figure for a period until the period is reconciled;
after that the reconciliation, and the statements hashed from it, are frozen.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from alliance.db.settlement import BrandReport, RunStatus, SettlementRun


@dataclass(frozen=True)
class ReportOutcome:
    """The report as stored, and whether this call changed it."""

    period_id: int
    brand_code: str
    liability_points: int
    changed: bool


REPORTS_LOCK_NAMESPACE = 0x414C5250
"""First key of the PostgreSQL advisory lock on a period's reports ("ALRP")."""


def lock_period_reports(session: Session, period_id: int) -> None:
    """Serialise, for one period, a report upload with the run freezing the reports: each
    takes this lock first in its write transaction, so a report is either in the frozen
    figures or refused `period_closed`, never stored beside them. PostgreSQL: an advisory
    lock held until the transaction ends (the run row may not exist yet, so a row lock
    would not do). SQLite: write transactions are serialised already (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, :period)"),
            {"namespace": REPORTS_LOCK_NAMESPACE, "period": period_id},
        )


def period_is_frozen(session: Session, period_id: int) -> bool:
    """Whether the period's reconciliation is frozen (reports no longer accepted)."""
    run = session.get(SettlementRun, period_id)
    return run is not None and run.status != RunStatus.STARTED


def record_brand_report(
    session: Session, period_id: int, brand_code: str, liability_points: int, reported_by: str
) -> ReportOutcome:
    """Store (or replace) a brand's figure; the caller commits, and first takes
    `lock_period_reports` and checks `period_is_frozen`."""
    assert liability_points >= 0
    report = session.get(BrandReport, (period_id, brand_code))
    if report is None:
        session.add(
            BrandReport(
                period_id=period_id,
                brand_code=brand_code,
                liability_points=liability_points,
                reported_by=reported_by,
            )
        )
        return ReportOutcome(period_id, brand_code, liability_points, True)
    changed = report.liability_points != liability_points
    report.liability_points, report.reported_by = liability_points, reported_by
    return ReportOutcome(period_id, brand_code, liability_points, changed)
