"""`alliance audit verify`: replay everything, compare with chain state, anchors, statements.

The replay (`reading.run_replay`) checks every event as it goes; afterwards the replayed
balances and supplies are compared with `balanceOf`/`totalSupply` at the same head block,
each anchored root with the root rebuilt at its closing block (and each token's supply
there), and, given a statements folder, each published file with its anchored hash and
with the figures the events give (`alliance.audit.statements_check`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alliance.audit.findings import Finding, hex_bytes
from alliance.audit.reading import AuditChain, Progress, _no_progress, run_replay
from alliance.audit.replay import Anchor, Replay
from alliance.audit.statements_check import check_statements
from alliance.chainstate import balances_batched, balances_lens, total_supplies

FINDINGS_PER_KIND_MAX = 100
"""Findings kept in the report per kind; the count says how many there were in all."""


@dataclass
class VerifyReport:
    """The outcome of one `verify` run."""

    head_block: int
    events: int = 0
    holdings_checked: int = 0
    anchors_checked: int = 0
    statements_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(finding.kind for finding in self.findings).items()))

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        kept: Counter[str] = Counter()
        findings = []
        for finding in self.findings:
            kept[finding.kind] += 1
            if kept[finding.kind] <= FINDINGS_PER_KIND_MAX:
                findings.append(finding.to_json())
        return {
            "format": "alliance-audit-report/1",
            "ok": self.ok,
            "head_block": self.head_block,
            "events": self.events,
            "holdings_checked": self.holdings_checked,
            "anchors_checked": self.anchors_checked,
            "statements_checked": self.statements_checked,
            "finding_counts": self.counts,
            "findings": findings,
            "timings_s": {key: round(value, 3) for key, value in self.timings_s.items()},
        }


def verify(
    chain: AuditChain,
    *,
    statements_dir: Path | None = None,
    cache_dir: Path | None = None,
    progress: Progress = _no_progress,
) -> VerifyReport:
    """Verify the whole alliance up to the current head block."""
    started = time.perf_counter()
    head = chain.rpc.block_number()
    report = VerifyReport(head_block=head)
    anchors = chain.anchors(head)
    replay = chain.new_replay(head, [anchor.closing_block for anchor in anchors])
    report.findings += run_replay(chain, replay, head, cache_dir=cache_dir, progress=progress)
    report.events = replay.events_applied
    report.timings_s["replay"] = time.perf_counter() - started
    mark = time.perf_counter()
    report.findings += compare_supplies(chain, replay.ledger.supplies, head)
    holdings_findings, report.holdings_checked = compare_balances(chain, replay, head)
    report.findings += holdings_findings
    report.timings_s["chain_state"] = time.perf_counter() - mark
    report.findings += check_anchors(chain, replay, replay.anchors)
    report.anchors_checked = len(replay.anchors)
    if statements_dir is not None:
        findings, report.statements_checked = check_statements(
            chain, replay, replay.anchors, statements_dir
        )
        report.findings += findings
    report.timings_s["total"] = time.perf_counter() - started
    return report


def compare_supplies(chain: AuditChain, replayed: dict[str, int], block: int) -> list[Finding]:
    """Each token's replayed supply against `totalSupply` at `block`."""
    tokens = list(chain.brands)
    on_chain = total_supplies(chain.rpc, tokens, block)
    return [
        Finding(
            "supply_mismatch",
            f"{chain.brands[token]}: replayed supply {replayed.get(token, 0)}, "
            f"totalSupply {on_chain[token]} at block {block}",
            {
                "token": token,
                "block": block,
                "replayed": str(replayed.get(token, 0)),
                "on_chain": str(on_chain[token]),
            },
        )
        for token in tokens
        if on_chain[token] != replayed.get(token, 0)
    ]


def compare_balances(chain: AuditChain, replay: Replay, block: int) -> tuple[list[Finding], int]:
    """Every holding the events ever touched against `balanceOf` at `block`."""
    holdings = sorted(replay.ledger.balances)
    if chain.lens_code is not None:
        on_chain = balances_lens(chain.rpc, chain.lens_code, holdings, block)
    else:
        on_chain = balances_batched(chain.rpc, holdings, block)
    findings = [
        Finding(
            "balance_mismatch",
            f"{account} on {chain.brands.get(token, token)}: replayed {replayed}, "
            f"balanceOf {actual} at block {block}",
            {
                "token": token,
                "account": account,
                "block": block,
                "replayed": str(replayed),
                "on_chain": str(actual),
            },
        )
        for (token, account), actual in zip(holdings, on_chain, strict=True)
        if (replayed := replay.ledger.balances[(token, account)]) != actual
    ]
    return findings, len(holdings)


def check_anchors(chain: AuditChain, replay: Replay, anchors: list[Anchor]) -> list[Finding]:
    """Each anchored root against the replayed one, each supply at its closing block."""
    findings = []
    for anchor in anchors:
        close = replay.closes.get(anchor.closing_block)
        if close is None:
            continue  # Closing block beyond the replayed head: checked on a later run.
        if close.balances_root != anchor.balances_root:
            findings.append(
                Finding(
                    "anchor_root_mismatch",
                    f"period {anchor.period_id}: anchored root "
                    f"{hex_bytes(anchor.balances_root)}, replayed "
                    f"{hex_bytes(close.balances_root)} ({close.leaf_count} holdings)",
                    {
                        **anchor.to_json(),
                        "replayed_root": hex_bytes(close.balances_root),
                        "replayed_leaves": close.leaf_count,
                    },
                )
            )
        on_chain = total_supplies(chain.rpc, list(chain.brands), anchor.closing_block)
        findings += [
            Finding(
                "anchor_supply_mismatch",
                f"period {anchor.period_id}: {chain.brands[token]} totalSupply {supply} at "
                f"block {anchor.closing_block}, replayed {close.supplies.get(token, 0)}",
                {
                    "period_id": anchor.period_id,
                    "token": token,
                    "on_chain": str(supply),
                    "replayed": str(close.supplies.get(token, 0)),
                },
            )
            for token, supply in on_chain.items()
            if supply != close.supplies.get(token, 0)
        ]
    return findings
