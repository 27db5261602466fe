"""Running settlement: `run_settlement` for one period, `SettlementService` for every night.

The service wakes every `poll_interval_s`, and once the local clock has passed
`close_time` it closes every day since the last completed period (at most
`CATCH_UP_DAYS_MAX`, oldest first). A failed run is logged and retried after
`retry_interval_s`; a completed period is never run again by the service.
"""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from alliance.db.settlement import RunStatus, SettlementRun
from alliance.errors import AllianceError
from alliance.settings import Settings
from settlement.context import SettlementContext, open_context
from settlement.errors import PeriodEmpty
from settlement.period import day_of
from settlement.risk import risk_hook
from settlement.run import AlertsHook, RunResult, close_period, no_alerts
from settlement.settings import SettlementSettings

CATCH_UP_DAYS_MAX = 7
"""Most past days one wake-up closes (a longer outage is caught up over several)."""

log = logging.getLogger("alliance.settlement")


def run_settlement(
    core: Settings,
    settings: SettlementSettings,
    day: date,
    *,
    gateway_database_url: str = "",
    alerts_hook: AlertsHook | None = None,
) -> RunResult:
    """Close (or re-run) the period of `day`: the on-demand entry point.

    The alerts hook defaults to the risk step (expiry, then fraud checks): the alert counts
    are part of the hashed statements, so every entry point must run the same one, or a
    re-run would compute a different hash than the anchor's.
    """
    context = open_context(core, settings, gateway_database_url=gateway_database_url)
    try:
        hook = alerts_hook if alerts_hook is not None else risk_hook(core)
        return close_period(context, day, alerts_hook=hook)
    finally:
        context.close()


def due_days(now: datetime, settings: SettlementSettings, last_complete: date | None) -> list[date]:
    """Days whose period should be closed at local time `now` (oldest first)."""
    local = now.astimezone(settings.zone)
    latest = local.date() - timedelta(days=1 if local.time() >= settings.close_time else 2)
    first = latest - timedelta(days=CATCH_UP_DAYS_MAX - 1)
    if last_complete is not None:
        first = max(first, last_complete + timedelta(days=1))
    return [first + timedelta(days=n) for n in range((latest - first).days + 1)]


class SettlementService:
    """The long-running nightly close, in a thread of its own."""

    def __init__(
        self,
        core: Settings,
        settings: SettlementSettings,
        *,
        gateway_database_url: str = "",
        alerts_hook: AlertsHook = no_alerts,
    ) -> None:
        self.core = core
        self.settings = settings
        self.gateway_database_url = gateway_database_url
        self.alerts_hook = alerts_hook
        self.stopping = threading.Event()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="settlement", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()

    def run_forever(self) -> None:
        # The first look waits one interval, so the gateway started beside it has
        # migrated the database first.
        while not self.stopping.wait(self.settings.poll_interval_s):
            try:
                self.run_due()
            except AllianceError as error:
                log.error("settlement run failed [%s]: %s", error.code, error)
                self.stopping.wait(self.settings.retry_interval_s)
            except Exception:
                # A long-running service must outlive one bad night (the database or the
                # chain gone mid-run); the failure is logged loudly and retried.
                log.exception("settlement run failed unexpectedly")
                self.stopping.wait(self.settings.retry_interval_s)

    def run_due(self) -> list[RunResult]:
        """Close every due period now; return what was closed."""
        context = open_context(
            self.core,
            self.settings,
            gateway_database_url=self.gateway_database_url,
            migrate=False,
        )
        try:
            days = due_days(datetime.now().astimezone(), self.settings, last_complete(context))
            if not days:
                # Keep the index warm between closes: the close then indexes only the last
                # minutes of its day, not all of it (a million conversions are five million
                # logs, minutes of indexing; docs/benchmarks.md, "Settlement").
                context.indexer.sync()
            return close_due(context, days, alerts_hook=self.alerts_hook)
        finally:
            context.close()


def close_due(
    context: SettlementContext, days: list[date], *, alerts_hook: AlertsHook = no_alerts
) -> list[RunResult]:
    """Close `days` in order. A day without a block has nothing to close and is passed
    over, so one quiet day on a local chain never holds back the days after it."""
    results = []
    for day in days:
        try:
            results.append(close_period(context, day, alerts_hook=alerts_hook))
        except PeriodEmpty as empty:
            log.info("%s: passed over", empty)
    return results


def last_complete(context: SettlementContext) -> date | None:
    with context.factory() as session:
        period = session.scalar(
            select(func.max(SettlementRun.period_id)).where(
                SettlementRun.status == RunStatus.COMPLETE
            )
        )
    return None if period is None else day_of(int(period))
