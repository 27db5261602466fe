"""The background driver of freezes whose chain step failed (`gateway.services.alerts`).

An approval records itself, then sends its chain step in the request; if the chain was
down or refused, the freeze keeps `last_error` and this thread drives it again every
`freeze_retry_s` until the chain shows the member frozen. Driving is idempotent (the chain
is read before anything is sent), so several replicas may run it.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from gateway.ledger import Ledger
from gateway.services import alerts
from gateway.settings import GatewaySettings

logger = logging.getLogger("gateway.freezes")


class FreezeDriver(threading.Thread):
    """Drives unfinished freezes until stopped."""

    def __init__(
        self, sessions: sessionmaker[Session], ledger: Ledger, settings: GatewaySettings
    ) -> None:
        super().__init__(name="freeze-driver", daemon=True)
        self.sessions = sessions
        self.ledger = ledger
        self.settings = settings
        self.stopping = threading.Event()

    def stop(self, timeout_s: float = 10) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join(timeout_s)

    def run(self) -> None:
        while not self.stopping.wait(self.settings.freeze_retry_s):
            try:
                self.step()
            except Exception:
                logger.exception("freeze pass failed")

    def step(self) -> int:
        """One pass: drive each unfinished freeze once; returns how many were driven."""
        with self.sessions() as session:
            due = alerts.unfinished_freezes(session, self.settings.freezes_per_pass_max)
        for freeze_id in due:
            if self.stopping.is_set():
                break
            alerts.drive_freeze(self.sessions, self.ledger, freeze_id)
        return len(due)
