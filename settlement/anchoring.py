"""Write a period's anchor once; on every later run, compare with it instead.

The contract refuses a second anchor for a period, so a re-run never anchors twice even if
the database forgot the first (a crash right after the transaction was mined): the chain's
anchor is read first and is the authority.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eth_utils import keccak

from alliance.db.session import unit_of_work
from alliance.db.settlement import RunStatus, SettlementRun
from settlement.context import SettlementContext
from settlement.errors import AnchorMismatch
from settlement.failpoints import AFTER_ANCHOR_SENT, failpoint
from settlement.period import PeriodWindow

PERIOD_ANCHORED_TOPIC = (
    "0x" + keccak(text="PeriodAnchored(uint256,uint64,bytes32,bytes32,address)").hex()
)


@dataclass(frozen=True)
class AnchorOutcome:
    """The anchor as `anchor.json` states it, and whether this run wrote it."""

    document: dict[str, Any]
    transaction_hash: str | None
    anchored_now: bool


class Anchorer:
    """Anchors a period through `SettlementAnchor.anchor`, signed by the settler key."""

    def __init__(self, context: SettlementContext) -> None:
        self.context = context

    def ensure_anchored(
        self, window: PeriodWindow, root: bytes, statements_hash: bytes, statements: bytes
    ) -> AnchorOutcome:
        """Anchor (first time) or compare (re-run); record the result in the run row."""
        contract = self.context.anchor_contract
        existing = self.context.chain.call(contract.functions.anchorOf(window.period_id))
        closing_block, anchored_at, anchored_root, anchored_hash = existing
        anchored_now = False
        if anchored_at:
            computed = (window.closing_block, root, statements_hash)
            anchored = (closing_block, bytes(anchored_root), bytes(anchored_hash))
            if computed != anchored:
                raise AnchorMismatch(window.period_id, _describe(anchored), _describe(computed))
            transaction = self._anchor_transaction(window)
        elif self.context.settings.anchor:
            call = contract.functions.anchor(
                window.period_id, window.closing_block, root, statements_hash
            )
            receipt = self.context.chain.transact(self.context.settler, call)
            transaction, anchored_now = receipt["transactionHash"].to_0x_hex(), True
            failpoint(AFTER_ANCHOR_SENT)
        else:
            transaction = None
        self._record(window, root, statements_hash, statements, transaction)
        return AnchorOutcome(
            self._document(window, root, statements_hash, transaction), transaction, anchored_now
        )

    def _anchor_transaction(self, window: PeriodWindow) -> str:
        """The transaction that anchored the period, from its `PeriodAnchored` log."""
        logs = self.context.rpc.call(
            "eth_getLogs",
            {
                "address": self.context.addresses.anchor,
                "fromBlock": hex(window.closing_block + 1),
                "toBlock": "latest",
                "topics": [
                    PERIOD_ANCHORED_TOPIC,
                    "0x" + window.period_id.to_bytes(32, "big").hex(),
                ],
            },
        )
        assert len(logs) == 1, f"{len(logs)} PeriodAnchored logs for {window.period_id}"
        return str(logs[0]["transactionHash"])

    def _record(
        self,
        window: PeriodWindow,
        root: bytes,
        statements_hash: bytes,
        statements: bytes,
        transaction: str | None,
    ) -> None:
        with unit_of_work(self.context.factory) as session:
            run = session.get(SettlementRun, window.period_id)
            assert run is not None, "the run row is written when the period is reconciled"
            run.balances_root = "0x" + root.hex()
            run.statements_hash = "0x" + statements_hash.hex()
            run.statements_json = statements.decode()
            run.anchor_tx = transaction
            if transaction is not None and run.status == RunStatus.RECONCILED:
                run.status = RunStatus.ANCHORED
            run.updated_at = datetime.now().astimezone()

    def _document(
        self, window: PeriodWindow, root: bytes, statements_hash: bytes, transaction: str | None
    ) -> dict[str, Any]:
        return {
            "period_id": window.period_id,
            "chain_id": self.context.manifest.chain_id,
            "anchor_contract": self.context.addresses.anchor,
            "opening_block": window.opening_block,
            "closing_block": window.closing_block,
            "balances_root": "0x" + root.hex(),
            "statements_hash": "0x" + statements_hash.hex(),
            "transaction_hash": transaction,
        }


def _describe(anchor: tuple[int, bytes, bytes]) -> str:
    closing, root, statements_hash = anchor
    return f"closing block {closing}, root 0x{root.hex()}, statements 0x{statements_hash.hex()}"
