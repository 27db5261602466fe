"""Errors of the settlement service. Each one stops a run loudly before anything is anchored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from alliance.errors import AllianceError


@dataclass(eq=False)
class SettlementError(AllianceError):
    """Root of the settlement service's errors."""

    code: ClassVar[str] = "settlement_error"


@dataclass(eq=False)
class IndexReorganised(SettlementError):
    """A block the index already holds has a different hash on chain now."""

    code: ClassVar[str] = "index_reorganised"
    block_number: int
    stored_hash: str
    chain_hash: str

    def describe(self) -> str:
        return (
            f"block {self.block_number} was indexed as {self.stored_hash} but the chain now "
            f"has {self.chain_hash}: raise the confirmation depth and re-index"
        )


@dataclass(eq=False)
class IndexOvertaken(SettlementError):
    """Other syncs kept storing the windows this one had read (a stuck race, not a gap)."""

    code: ClassVar[str] = "index_overtaken"
    attempts: int

    def describe(self) -> str:
        return (
            f"{self.attempts} attempts to index were each overtaken by another indexer of "
            f"the same database; run again"
        )


@dataclass(eq=False)
class IndexIncomplete(SettlementError):
    """The index does not match the chain (a missed or altered event)."""

    code: ClassVar[str] = "index_incomplete"
    findings: list[str]

    def describe(self) -> str:
        return "the event index does not match the chain: " + "; ".join(self.findings)


@dataclass(eq=False)
class PeriodNotClosable(SettlementError):
    """The period cannot be closed (yet)."""

    code: ClassVar[str] = "period_not_closable"
    period_id: int
    reason: str

    def describe(self) -> str:
        return f"period {self.period_id} cannot be closed: {self.reason}"


@dataclass(eq=False)
class PeriodEmpty(PeriodNotClosable):
    """No block falls in the period, so there is nothing to close (a quiet day on a chain
    that mines only on demand, such as a local Anvil)."""

    code: ClassVar[str] = "period_empty"


@dataclass(eq=False)
class AnchorMismatch(SettlementError):
    """A re-run computed a different root or statements hash than the period's anchor."""

    code: ClassVar[str] = "anchor_mismatch"
    period_id: int
    anchored: str
    computed: str

    def describe(self) -> str:
        return (
            f"period {self.period_id} is anchored as {self.anchored} but this run computed "
            f"{self.computed}: the books changed after anchoring; investigate, do not re-anchor"
        )


@dataclass(eq=False)
class BalancesDoNotMatch(SettlementError):
    """Balances replayed from events disagree with chain state at the closing block."""

    code: ClassVar[str] = "balances_do_not_match"
    period_id: int
    findings: list[str]

    def describe(self) -> str:
        shown = "; ".join(self.findings[:10])
        return f"period {self.period_id}: replayed balances differ from chain state: {shown}"
