"""Reconciliation: gateway records ↔ chain events ↔ chain balances ↔ brand reports. Pure.

Each function takes plain records and returns `Finding`s; nothing is ever "fixed". The
run persists the findings as discrepancies with their evidence (docs/settlement.md,
"Reconciliation"). Matching is by (contract, request id): request ids are unique per
contract, and the gateway's operation ids are the request ids it sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from alliance.db.settlement import DiscrepancyKind

MATCHED_STATUSES = ("submitted", "confirmed")
"""Gateway statuses that claim the operation is (or is about to be) on chain."""


@dataclass(frozen=True, slots=True)
class ChainRecord:
    """A request-carrying event (`PointsMinted`, `PointsBurned`, `Converted`, `Gifted`)."""

    contract: str
    request_id: int
    name: str
    brand_code: str
    account: str
    amount: int
    amount_out: int | None
    transaction_hash: str
    block_number: int


@dataclass(frozen=True, slots=True)
class GatewayRecord:
    """A gateway operation as it should appear on chain."""

    operation_id: int
    contract: str
    request_id: int
    kind: str
    status: str
    brand_code: str
    account: str
    amount: int
    amount_out: int | None
    transaction_hash: str | None


@dataclass(frozen=True)
class Finding:
    """One discrepancy, before it is stored."""

    kind: DiscrepancyKind
    brand_code: str | None
    request_id: int | None = None
    transaction_hash: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def sort_key(self) -> tuple[str, str, int, str]:
        return (self.kind, self.brand_code or "", self.request_id or 0, self.transaction_hash or "")


EXPECTED_EVENT = {
    "deposit": "PointsMinted",
    "withdrawal": "PointsBurned",
    "conversion": "Converted",
    "gift": "Gifted",
    "expiry": "PointsBurned",
}
"""The event each kind of gateway operation produces."""


def agrees(event: ChainRecord, record: GatewayRecord | None) -> bool:
    """The operation claims the event and records exactly what happened."""
    return (
        record is not None and record.status in MATCHED_STATUSES and not _differences(event, record)
    )


def match_events(pairs: Iterable[tuple[ChainRecord, GatewayRecord | None]]) -> list[Finding]:
    """Events of the period, each with the gateway operation of its request id at its
    contract (None if there is none): unknown to the gateway (no operation, or one the
    gateway thinks failed), or a different member, brand or amount."""
    findings = []
    for event, record in pairs:
        if record is None or record.status not in MATCHED_STATUSES:
            findings.append(_unknown(event, record))
            continue
        differences = _differences(event, record)
        if differences:
            findings.append(
                Finding(
                    DiscrepancyKind.AMOUNT_MISMATCH,
                    record.brand_code,
                    event.request_id,
                    event.transaction_hash,
                    {
                        "operation_id": record.operation_id,
                        "event": event.name,
                        "block_number": event.block_number,
                        "differences": differences,
                    },
                )
            )
    return findings


def _unknown(event: ChainRecord, record: GatewayRecord | None) -> Finding:
    return Finding(
        DiscrepancyKind.UNKNOWN_TO_GATEWAY,
        event.brand_code,
        event.request_id,
        event.transaction_hash,
        {
            "event": event.name,
            "contract": event.contract,
            "account": event.account,
            "amount": str(event.amount),
            "block_number": event.block_number,
            "gateway_status": None if record is None else record.status,
            "operation_id": None if record is None else record.operation_id,
        },
    )


def _differences(event: ChainRecord, record: GatewayRecord) -> dict[str, list[str]]:
    """field → [gateway, chain] for every field that differs."""
    pairs = {
        "event": (EXPECTED_EVENT.get(record.kind, "?"), event.name),
        "brand": (record.brand_code, event.brand_code),
        "account": (record.account.lower(), event.account.lower()),
        "amount": (str(record.amount), str(event.amount)),
    }
    if record.amount_out is not None and event.amount_out is not None:
        pairs["amount_out"] = (str(record.amount_out), str(event.amount_out))
    return {name: [ours, theirs] for name, (ours, theirs) in pairs.items() if ours != theirs}


def missing_on_chain(unseen: Iterable[GatewayRecord]) -> list[Finding]:
    """Operations the gateway recorded as sent or confirmed whose request id the chain
    never saw (`unseen`: up to the index checkpoint): lost transactions or lost receipts."""
    return [
        Finding(
            DiscrepancyKind.MISSING_ON_CHAIN,
            record.brand_code,
            record.request_id,
            record.transaction_hash,
            {
                "operation_id": record.operation_id,
                "kind": record.kind,
                "gateway_status": record.status,
                "account": record.account,
                "amount": str(record.amount),
            },
        )
        for record in unseen
        if record.status in MATCHED_STATUSES
    ]


def balance_drift(
    replayed: Mapping[tuple[str, str], int],
    on_chain: Mapping[tuple[str, str], int],
    brand_of: Mapping[str, str],
) -> list[Finding]:
    """(token, account) holdings whose replayed balance differs from `balanceOf`."""
    findings = []
    for key, chain_balance in on_chain.items():
        indexed = replayed.get(key, 0)
        if indexed != chain_balance:
            token, account = key
            findings.append(
                Finding(
                    DiscrepancyKind.BALANCE_DRIFT,
                    brand_of[token],
                    evidence={
                        "token": token,
                        "account": account,
                        "indexed_balance": str(indexed),
                        "chain_balance": str(chain_balance),
                    },
                )
            )
    return findings


def brand_total_mismatches(
    reported: Mapping[str, int], closing_supply: Mapping[str, int]
) -> list[Finding]:
    """Brands whose reported liability differs from their token's supply at the close."""
    return [
        Finding(
            DiscrepancyKind.BRAND_TOTAL_MISMATCH,
            brand,
            evidence={
                "reported_liability": str(points),
                "closing_supply": str(closing_supply[brand]),
                "difference": str(points - closing_supply[brand]),
            },
        )
        for brand, points in sorted(reported.items())
        if points != closing_supply[brand]
    ]


def findings_document(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """The findings as `discrepancies.json` lists them (stable order)."""
    return [
        {
            "kind": str(finding.kind),
            "brand": finding.brand_code,
            "request_id": None if finding.request_id is None else str(finding.request_id),
            "transaction_hash": finding.transaction_hash,
            "evidence": finding.evidence,
        }
        for finding in sorted(findings, key=Finding.sort_key)
    ]
