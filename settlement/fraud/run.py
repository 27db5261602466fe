"""The fraud step of a settlement run: build the period's records, run the rules, store the
alerts by natural key and queue each new alert for its brands' webhooks (same transaction).

Re-running a period finds the same alerts; those already stored are neither stored nor sent
again. `notify` is the gateway's outbox function (`gateway.webhooks.enqueue_brand_event`),
passed in so this module needs no gateway object.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alliance.db.risk import AlertStatus, FraudAlert, FraudAlertBrand
from alliance.db.session import unit_of_work
from settlement.fraud.records import Alert, FraudInputs, Period
from settlement.fraud.rules import evaluate
from settlement.fraud.settings import FraudSettings

ALERT_EVENT = "alert.raised"
ALERT_ID_PREFIX = "alr_"

Notify = Callable[[Session, str, str, dict[str, Any]], int]
"""(session, brand code, event type, data) → deliveries queued."""


def alert_public_id(alert: Alert) -> str:
    """A stable public id from the natural key: a re-run names the same alert the same."""
    digest = hashlib.sha256(json.dumps(list(alert.key)).encode()).hexdigest()
    return ALERT_ID_PREFIX + digest[:24]


def alert_document(alert: Alert) -> dict[str, Any]:
    """The alert as webhooks and `alerts.json` carry it (no personal data: an address)."""
    return {
        "id": alert_public_id(alert),
        "period_id": alert.period_id,
        "rule": alert.rule,
        "severity": alert.severity.value,
        "member_address": alert.member,
        "brands": list(alert.brands),
        "subject": alert.subject,
        "summary": alert.summary,
        "evidence": alert.evidence_json(),
    }


def store_alerts(session: Session, alerts: list[Alert], notify: Notify) -> list[str]:
    """Store the alerts not stored yet and queue them for their brands; returns the public
    ids of the new ones."""
    new = []
    for alert in alerts:
        period_id, rule, member, subject = alert.key
        stored = session.scalars(
            select(FraudAlert.id)
            .where(FraudAlert.period_id == period_id)
            .where(FraudAlert.rule == rule)
            .where(FraudAlert.member_address == member)
            .where(FraudAlert.subject == subject)
        ).first()
        if stored is not None:
            continue
        document = alert_document(alert)
        row = FraudAlert(
            public_id=document["id"],
            period_id=period_id,
            rule=rule,
            member_address=member,
            subject=subject,
            severity=alert.severity.value,
            summary=alert.summary,
            evidence=document["evidence"],
            status=AlertStatus.OPEN,
        )
        row.brands = [FraudAlertBrand(brand_code=brand) for brand in alert.brands]
        session.add(row)
        for brand in alert.brands:
            notify(session, brand, ALERT_EVENT, document)
        new.append(document["id"])
    return new


@dataclass(frozen=True)
class FraudResult:
    """What the fraud step found: every alert of the period, and which were new."""

    alerts: list[Alert]
    new_alert_ids: list[str]


def period_of(period_id: int, start_timestamp: int, end_timestamp: int) -> Period:
    """The rules' period from a run's period window (Unix seconds)."""
    return Period(
        period_id,
        datetime.fromtimestamp(start_timestamp, UTC),
        datetime.fromtimestamp(end_timestamp, UTC),
    )


def raise_alerts(
    sessions: sessionmaker[Session], inputs: FraudInputs, settings: FraudSettings, notify: Notify
) -> FraudResult:
    """Run every rule over the period's records and store the new alerts."""
    alerts = evaluate(inputs, settings)
    with unit_of_work(sessions) as session:
        new = store_alerts(session, alerts, notify)
    return FraudResult(alerts, new)


def stored_alert_documents(session: Session, period_id: int) -> list[dict[str, Any]]:
    """The period's stored alerts (for `alerts.json` and the report), by natural key. The
    review status is left out: it changes after the close, and a re-run of the period must
    write the same files."""
    rows = session.scalars(
        select(FraudAlert)
        .where(FraudAlert.period_id == period_id)
        .order_by(FraudAlert.rule, FraudAlert.member_address, FraudAlert.subject)
    )
    return [
        {
            "id": row.public_id,
            "period_id": row.period_id,
            "rule": row.rule,
            "severity": row.severity,
            "member_address": row.member_address,
            "brands": row.brand_codes,
            "subject": row.subject,
            "summary": row.summary,
            "evidence": row.evidence,
        }
        for row in rows
    ]
