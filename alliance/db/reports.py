"""Brand-reported liability totals: what a brand says it owes, compared at the close.

The gateway records reports (brands upload them); the settlement run reads and freezes them:
the helpers live in the core so neither app imports the other.

A brand may report (and correct) its figure for a period until the period is reconciled;
after that the reconciliation, and the statements hashed from it, are frozen.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from alliance.db.settlement import BrandReport, RunStatus, SettlementRun


@dataclass(frozen=True)
class ReportOutcome:
    """The report as stored, and whether this call changed it."""

    period_id: int
    brand_code: str
    liability_points: int
    changed: bool


def period_is_frozen(session: Session, period_id: int) -> bool:
    """Whether the period's reconciliation is frozen (reports no longer accepted)."""
    run = session.get(SettlementRun, period_id)
    return run is not None and run.status != RunStatus.STARTED


def record_brand_report(
    session: Session, period_id: int, brand_code: str, liability_points: int, reported_by: str
) -> ReportOutcome:
    """Store (or replace) a brand's figure; the caller commits and checks
    `period_is_frozen` first."""
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
