"""Starts one submitter per signing key and routes wake-ups and settlement hooks."""

from __future__ import annotations

from collections.abc import Callable

from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import Session, sessionmaker

from alliance.db.models import Operation
from gateway.ledger import Ledger
from gateway.pipeline.submitter import SettledHook, Submitter
from gateway.services.operations import OperationWaiters
from gateway.settings import GatewaySettings


class Pipeline:
    """The submitters of every signing key the gateway holds."""

    def __init__(
        self,
        ledger: Ledger,
        sessions: sessionmaker[Session],
        settings: GatewaySettings,
        keys: Callable[[str], LocalAccount],
        waiters: OperationWaiters,
        on_final: list[SettledHook],
    ) -> None:
        self.waiters = waiters
        self._on_final = on_final
        names = ["operator"]
        for code in ledger.brands:
            names += [f"{code}.issuer", f"{code}.admin"]
        self.submitters = {
            name: Submitter(
                name, keys(name), ledger, sessions, settings, self._final, self._committed
            )
            for name in names
        }

    def start(self) -> None:
        for submitter in self.submitters.values():
            submitter.start()

    def stop(self, timeout_s: float = 10) -> None:
        for submitter in self.submitters.values():
            submitter.stop()
        for submitter in self.submitters.values():
            if submitter.is_alive():
                submitter.join(timeout_s)

    def wake(self, signer_name: str | None, *, action: bool = False) -> None:
        """Tell a submitter new work is waiting (after the request's commit); `action`: an
        operator's cancel or re-submit (looked for at once instead of within a second)."""
        if signer_name in self.submitters:
            submitter = self.submitters[signer_name]
            if action:
                submitter.actions_waiting.set()
            submitter.wakeup.set()

    def run_final_hooks(self, session: Session, operation: Operation) -> None:
        """Run the `on_final` hooks for an operation finished outside a submitter (an
        operator's cancel of an accepted operation), inside the caller's transaction."""
        self._final(session, operation)

    def _final(self, session: Session, operation: Operation) -> None:
        for hook in self._on_final:
            hook(session, operation)

    def _committed(self, operation_ids: list[int]) -> None:
        self.waiters.notify(operation_ids)
