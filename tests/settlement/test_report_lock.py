"""A brand's liability report and the run freezing the reports are serialised per period.

Real database (SQLite by default, PostgreSQL under `scripts/with-postgres.sh`): the run's
freeze holds the period's report lock (`alliance.db.reports.lock_period_reports`) while a
gateway upload starts in another thread; the upload must wait, then see the frozen period
and be refused, storing nothing. Without the lock, PostgreSQL let the upload through (the
run row it used to lock did not exist yet), leaving a report outside the frozen figures.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from alliance.db.migrate import upgrade_to_head
from alliance.db.reports import lock_period_reports
from alliance.db.session import make_engine, make_session_factory, unit_of_work
from alliance.db.settlement import BrandReport, RunStatus, SettlementRun
from gateway.services.settlement import PeriodClosed, record_report
from tests.gateway.stack import Databases

PERIOD = 20261122


def test_a_report_uploaded_while_the_run_freezes_waits_and_is_refused(
    tmp_path: Path, databases: Databases
) -> None:
    url = databases.fresh("report_lock") or f"sqlite:///{tmp_path / 'books.db'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    factory = make_session_factory(engine)
    outcome: list[str] = []
    started = threading.Event()

    def upload() -> None:
        started.set()
        try:
            with unit_of_work(factory) as session:
                record_report(session, PERIOD, "bean", 5, "bean-client")
            outcome.append("stored")
        except PeriodClosed:
            outcome.append("refused")

    uploader = threading.Thread(target=upload)
    with unit_of_work(factory) as session:
        lock_period_reports(session, PERIOD)
        run = SettlementRun(period_id=PERIOD, status=RunStatus.RECONCILED)
        run.opening_block, run.closing_block, run.reported_liability = 1, 2, {}
        session.add(run)
        session.flush()
        uploader.start()
        assert started.wait(10)
        time.sleep(0.5)
        assert uploader.is_alive(), "the upload went ahead while the reports were being frozen"
    uploader.join(30)

    assert outcome == ["refused"]
    with factory() as session:
        assert session.get(BrandReport, (PERIOD, "bean")) is None
    engine.dispose()


def test_an_open_period_takes_reports_under_the_lock(tmp_path: Path, databases: Databases) -> None:
    period = PERIOD + 1
    url = databases.fresh("report_open") or f"sqlite:///{tmp_path / 'books.db'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        record_report(session, period, "bean", 7, "bean-client")
    with factory() as session:
        stored = session.get(BrandReport, (period, "bean"))
        assert stored is not None and stored.liability_points == 7
    engine.dispose()
