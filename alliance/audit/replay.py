"""The replay: every alliance event, in chain order, through the pure state machines.

`Replay` routes each decoded event to the ledger (`ledger.Ledger`), the rate book and pair
policies (`rates`), the conversion checks (`checks`) and the current period's figures,
and closes a period at each anchored closing block: the balances root and the supplies at
that block, and the period's figures for comparing with published statements. It reads
nothing itself; the caller feeds events and block timestamps (from the chain or a cache).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from alliance.audit.checks import check_conversion
from alliance.audit.findings import Finding
from alliance.audit.ledger import Ledger
from alliance.audit.rates import PairPolicyBook, RateBookReplay
from alliance.events import ChainEvent
from alliance.merkle import BalancesTree
from alliance.netting import Conversion
from alliance.statements import PeriodActivity

TIMED_EVENTS = frozenset({"Converted", "RateScheduled", "BrandListed", "PeriodAnchored"})
"""Events whose checks need their block's timestamp."""


@dataclass(frozen=True)
class Anchor:
    """One `PeriodAnchored` event."""

    period_id: int
    closing_block: int
    balances_root: bytes
    statements_hash: bytes
    settler: str
    block_number: int
    transaction_hash: str

    @classmethod
    def from_event(cls, event: ChainEvent) -> Anchor:
        args = event.args
        return cls(
            period_id=args["periodId"],
            closing_block=args["closingBlock"],
            balances_root=args["balancesRoot"],
            statements_hash=args["statementsHash"],
            settler=args["settler"],
            block_number=event.block_number,
            transaction_hash=event.transaction_hash,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "period_id": self.period_id,
            "closing_block": self.closing_block,
            "balances_root": "0x" + self.balances_root.hex(),
            "statements_hash": "0x" + self.statements_hash.hex(),
            "settler": self.settler,
            "block_number": self.block_number,
            "transaction_hash": self.transaction_hash,
        }


@dataclass
class PeriodFigures:
    """A period's event sums (the chain-derived part of its statements), as they replay."""

    opening_block: int
    opening_supplies: dict[str, int]
    """Token → supply at the previous closing block (empty before the first period)."""
    activity: PeriodActivity = field(default_factory=PeriodActivity)


@dataclass(frozen=True)
class PeriodClose:
    """The replayed state at one closing block."""

    closing_block: int
    balances_root: bytes
    leaf_count: int
    supplies: dict[str, int]
    figures: PeriodFigures
    balances: dict[tuple[str, str], int] | None
    """A copy of every balance, kept only when asked (`prove`, `evidence`)."""


class Replay:
    """Feed events in chain order with `apply`; call `finish` at the last block."""

    def __init__(
        self,
        *,
        brands: Mapping[str, str],
        exchange: str,
        anchor: str,
        deploy_block: int,
        closing_blocks: Iterable[int] = (),
        notice_period_s: int,
        keep_balances: bool = False,
    ) -> None:
        self.brands = dict(brands)
        """Token address → brand code."""
        self.exchange = exchange
        self.anchor_address = anchor
        self.ledger = Ledger()
        self.rates = RateBookReplay(notice_period_s=notice_period_s)
        self.policies = PairPolicyBook()
        self.anchors: list[Anchor] = []
        self.closes: dict[int, PeriodClose] = {}
        self.events_applied = 0
        self.last_block = deploy_block - 1
        self._closing_blocks = sorted(set(closing_blocks))
        self._keep_balances = keep_balances
        self._period = PeriodFigures(deploy_block, {})
        self._handlers: dict[str, Callable[[ChainEvent, int], list[Finding]]] = {
            "Transfer": lambda e, t: self._token_event(e, self.ledger.transfer),
            "PointsMinted": self._minted,
            "PointsBurned": self._burned,
            "ApprovalRequested": lambda e, t: self._token_event(e, self.ledger.approval_requested),
            "ApprovalCancelled": lambda e, t: self._token_event(e, self.ledger.approval_cancelled),
            "Converted": self._converted,
            "Gifted": self._gifted,
            "BrandListed": self._rate_event,
            "RateScheduled": self._rate_event,
            "RateCancelled": self._rate_event,
            "NoticePeriodChanged": self._rate_event,
            "PairPolicySet": self._policy_event,
            "PeriodAnchored": self._anchored,
        }

    # ------------------------------------------------------------------ driving

    def apply(self, event: ChainEvent, timestamp: int) -> list[Finding]:
        """Apply one event (timestamp: its block's; only `TIMED_EVENTS` need a real one)."""
        due = self._closing_blocks and self._closing_blocks[0] < event.block_number
        findings = self._close_before(event.block_number) if due else []
        handler = self._handlers.get(event.name)
        if handler is not None:
            findings += handler(event, timestamp)
        self.events_applied += 1
        self.last_block = event.block_number
        return findings

    def finish(self, last_block: int) -> list[Finding]:
        """The replay reached `last_block`: settle the last transaction and due periods."""
        findings = self.ledger.flush()
        findings += self._close_before(last_block + 1)
        self.last_block = max(self.last_block, last_block)
        return findings

    def _close_before(self, block: int) -> list[Finding]:
        findings: list[Finding] = []
        while self._closing_blocks and self._closing_blocks[0] < block:
            findings += self.ledger.flush()
            self._close(self._closing_blocks.pop(0))
        return findings

    def _close(self, closing_block: int) -> None:
        tree = BalancesTree.from_balances(
            (account, token, balance) for (token, account), balance in self.ledger.balances.items()
        )
        supplies = dict(self.ledger.supplies)
        self.closes[closing_block] = PeriodClose(
            closing_block=closing_block,
            balances_root=tree.root,
            leaf_count=tree.leaf_count,
            supplies=supplies,
            figures=self._period,
            balances=dict(self.ledger.balances) if self._keep_balances else None,
        )
        self._period = PeriodFigures(closing_block + 1, supplies)

    # ------------------------------------------------------------------ handlers

    def _token_event(
        self, event: ChainEvent, apply: Callable[[ChainEvent], list[Finding]]
    ) -> list[Finding]:
        # Only the manifest's tokens count; another contract's event is not the ledger's.
        return apply(event) if event.address in self.brands else []

    def _minted(self, event: ChainEvent, timestamp: int) -> list[Finding]:
        if event.address not in self.brands:
            return []
        code = self.brands[event.address]
        self._period.activity.add_mint(code, event.args["reason"], event.args["amount"])
        return self.ledger.minted(event)

    def _burned(self, event: ChainEvent, timestamp: int) -> list[Finding]:
        if event.address not in self.brands:
            return []
        code = self.brands[event.address]
        self._period.activity.add_burn(code, event.args["reason"], event.args["amount"])
        return self.ledger.burned(event)

    def _converted(self, event: ChainEvent, timestamp: int) -> list[Finding]:
        if event.address != self.exchange:
            return []
        args = event.args
        pair = (args["fromToken"], args["toToken"])
        inflow = self.policies.record_inflow(pair, timestamp, args["amountOut"])
        findings = self.ledger.converted(event)
        findings += check_conversion(
            event,
            timestamp,
            self.rates.rate_at(pair[0], timestamp),
            self.rates.rate_at(pair[1], timestamp),
            self.policies.in_force.get(pair),
            inflow,
        )
        self._count_conversion(args)
        return findings

    def _count_conversion(self, args: dict[str, Any]) -> None:
        from_code = self.brands.get(args["fromToken"], args["fromToken"])
        to_code = self.brands.get(args["toToken"], args["toToken"])
        self._period.activity.add_conversion(
            Conversion(
                from_brand=from_code,
                to_brand=to_code,
                amount_in=args["amountIn"],
                amount_out=args["amountOut"],
                fee_points=args["feePoints"],
                value_in=args["valueIn"],
                rate_to=args["rateTo"],
            )
        )

    def _gifted(self, event: ChainEvent, timestamp: int) -> list[Finding]:
        if event.address != self.exchange:
            return []
        code = self.brands.get(event.args["token"], event.args["token"])
        self._period.activity.add_gift(code, event.args["amount"])
        return self.ledger.gifted(event)

    def _rate_event(self, event: ChainEvent, timestamp: int) -> list[Finding]:
        return self.rates.apply(event, timestamp) if event.address == self.exchange else []

    def _policy_event(self, event: ChainEvent, timestamp: int) -> list[Finding]:
        if event.address == self.exchange:
            self.policies.apply(event)
        return []

    def _anchored(self, event: ChainEvent, timestamp: int) -> list[Finding]:
        if event.address != self.anchor_address:
            return []
        anchor = Anchor.from_event(event)
        previous = self.anchors[-1].closing_block if self.anchors else -1
        self.anchors.append(anchor)
        if anchor.closing_block > previous:
            return []
        return [
            Finding(
                "anchor_order",
                f"period {anchor.period_id} closes at block {anchor.closing_block}, not after "
                f"the previous period's {previous}",
                anchor.to_json(),
            )
        ]
