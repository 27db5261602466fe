"""Findings: what the audit reports when something does not add up.

A finding has a stable `kind` (safe to match on in scripts and tests), a one-line
message and the evidence an auditor needs to look it up on chain (blocks, transactions,
expected and actual values). Kinds are listed in `KINDS` with their meaning; docs/audit.md
repeats the table. Evidence values are JSON-ready: ints, strings, hex for bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS: dict[str, str] = {
    # Ledger: balances and supplies.
    "balance_mismatch": "an account's replayed balance differs from balanceOf on chain",
    "supply_mismatch": "a token's replayed supply differs from totalSupply on chain",
    "negative_balance": "replaying the Transfer events drives a balance below zero",
    "unexplained_transfer": "a mint, burn or move has no PointsMinted/Burned, Converted "
    "or Gifted explaining it in the same transaction",
    "unbacked_event": "a PointsMinted/Burned, Converted or Gifted event without the "
    "Transfer it describes",
    # Request ids and reason codes.
    "duplicate_request_id": "a request id was processed twice by one contract",
    "invalid_reason": "a mint or burn carries a reason or source its entry point refuses",
    "unapproved_mint_or_burn": "a compensation or correction without its approval request",
    # Conversions and rates.
    "conversion_rate_mismatch": "a conversion's rateFrom/rateTo differ from the rate book",
    "conversion_fee_mismatch": "a conversion's feeBps differs from the pair policy in force",
    "conversion_arithmetic": "a conversion's amounts do not follow from its rates and fee",
    "conversion_pair_disabled": "a conversion on a pair its receiving brand had not enabled",
    "conversion_limit": "a conversion outside the pair's minimum or maximum",
    "conversion_daily_cap": "a pair's inflow in one UTC day exceeds its daily cap",
    "conversion_unknown_brand": "a conversion with a token the rate book never listed",
    "rate_notice_too_short": "a rate scheduled to take effect before the notice period",
    "notice_period_mismatch": "NoticePeriodChanged's previous period is not the one replayed",
    # Anchors and statements.
    "anchor_root_mismatch": "an anchored balances root differs from the replayed one",
    "anchor_supply_mismatch": "totalSupply at an anchored closing block differs from the replay",
    "anchor_order": "an anchor's closing block is not after the previous one",
    "statements_missing": "an anchored period has no published statements.json",
    "statements_hash_mismatch": "keccak256 of a published statements.json differs from "
    "the anchored statementsHash",
    "statements_figures_mismatch": "a published statement's figures differ from the events",
    "statements_unanchored": "a published statements.json for a period never anchored",
    # The local cache.
    "cache_gap": "the local replay cache lost a block range (it was ignored from there on)",
    "cache_corrupt": "a cache segment's digest does not match (it was ignored)",
    "cache_stale": "a cached block's hash differs from the chain's (reorganised or "
    "another chain; the cache was ignored from there on)",
}
"""Every finding kind and what it means."""


@dataclass(frozen=True)
class Finding:
    """One problem the audit found, with its evidence."""

    kind: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.kind in KINDS, f"unknown finding kind {self.kind}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "evidence": self.evidence}


def hex_bytes(value: bytes) -> str:
    """0x-hex of bytes, the form evidence carries hashes and roots in."""
    return "0x" + value.hex()
