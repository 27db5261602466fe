"""Published statements against the anchors and the events.

For each anchored period, `<dir>/<period_id>/statements.json` must hash (keccak256 of the
file's bytes) to the anchored `statementsHash`, and its figures must be what
`alliance.statements.build_statements` gives for the replayed period: blocks, balances
root, supplies, mints and burns by reason, conversions, flows and nets. The figures that
do not come from the chain (peg, currency, time zone, brand-reported liability,
discrepancy and alert counts) are taken from the file itself: the audit states them, it
cannot re-derive them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alliance.audit.findings import Finding, hex_bytes
from alliance.audit.replay import Anchor, PeriodClose, Replay
from alliance.statements import BrandInfo, PeriodFacts, build_statements, statements_hash

if TYPE_CHECKING:
    from alliance.audit.reading import AuditChain

STATEMENTS_FILE = "statements.json"
DIFFERENCES_MAX = 50
"""Differing fields listed per statement (the count says how many there were)."""


def check_statements(
    chain: AuditChain, replay: Replay, anchors: list[Anchor], directory: Path
) -> tuple[list[Finding], int]:
    """Findings for the published statements under `directory`; also how many were read."""
    findings: list[Finding] = []
    checked = 0
    anchored = {anchor.period_id for anchor in anchors}
    for anchor in anchors:
        close = replay.closes.get(anchor.closing_block)
        if close is None:
            continue
        path = directory / str(anchor.period_id) / STATEMENTS_FILE
        if not path.is_file():
            findings.append(
                Finding("statements_missing", f"no {path}", {"period_id": anchor.period_id})
            )
            continue
        checked += 1
        findings += check_one(chain, anchor, close, path.read_bytes())
    for folder in sorted(directory.iterdir()) if directory.is_dir() else []:
        if (folder / STATEMENTS_FILE).is_file() and folder.name not in map(str, anchored):
            findings.append(
                Finding(
                    "statements_unanchored",
                    f"{folder / STATEMENTS_FILE} has no anchor on chain",
                    {"period_folder": folder.name},
                )
            )
    return findings, checked


def check_one(chain: AuditChain, anchor: Anchor, close: PeriodClose, data: bytes) -> list[Finding]:
    """One period's published file against its anchor and the replayed period."""
    findings = []
    digest = statements_hash(data)
    if digest != anchor.statements_hash:
        findings.append(
            Finding(
                "statements_hash_mismatch",
                f"period {anchor.period_id}: file hashes to {hex_bytes(digest)}, anchored "
                f"{hex_bytes(anchor.statements_hash)}",
                {**anchor.to_json(), "file_hash": hex_bytes(digest)},
            )
        )
    try:
        published = json.loads(data)
        expected = expected_statements(chain, anchor, close, published)
    except (ValueError, KeyError, TypeError, InvalidOperation) as error:
        return [*findings, _figures(anchor, [f"unreadable document: {error}"])]
    differences = list(differences_between(expected, published))
    if differences:
        findings.append(_figures(anchor, differences))
    return findings


def expected_statements(
    chain: AuditChain, anchor: Anchor, close: PeriodClose, published: dict[str, Any]
) -> dict[str, Any]:
    """The document the replay gives, with the published non-chain facts filled in."""
    brands = [BrandInfo(code, token) for token, code in chain.brands.items()]
    codes = chain.brands
    reported = {b["brand"]: b for b in published.get("brands", [])}
    liability = {
        code: int(entry["reported_liability"])
        for code, entry in reported.items()
        if entry.get("reported_liability") is not None
    }
    facts = PeriodFacts(
        period_id=anchor.period_id,
        time_zone=published["time_zone"],
        opening_block=close.figures.opening_block,
        closing_block=close.closing_block,
        balances_root=close.balances_root,
        peg=Decimal(published["peg"]),
        currency=published["currency"],
        brands=brands,
        opening_supply={codes[t]: close.figures.opening_supplies.get(t, 0) for t in codes},
        closing_supply={codes[t]: close.supplies.get(t, 0) for t in codes},
        reported_liability=liability,
        discrepancies={code: entry.get("discrepancies", 0) for code, entry in reported.items()},
        alerts={code: entry.get("alerts", 0) for code, entry in reported.items()},
    )
    return build_statements(facts, close.figures.activity)


def differences_between(expected: Any, published: Any, path: str = "") -> Iterator[str]:
    """Every path where the two JSON values differ, as `path: expected != published`."""
    if isinstance(expected, dict) and isinstance(published, dict):
        for key in sorted(set(expected) | set(published)):
            yield from differences_between(
                expected.get(key), published.get(key), f"{path}.{key}" if path else key
            )
    elif isinstance(expected, list) and isinstance(published, list):
        if len(expected) != len(published):
            yield f"{path}: {len(expected)} entries != {len(published)}"
            return
        for index, (left, right) in enumerate(zip(expected, published, strict=True)):
            yield from differences_between(left, right, f"{path}[{index}]")
    elif expected != published:
        yield f"{path}: {expected!r} != {published!r}"


def _figures(anchor: Anchor, differences: list[str]) -> Finding:
    return Finding(
        "statements_figures_mismatch",
        f"period {anchor.period_id}: {len(differences)} figure(s) differ from the events, "
        f"first {differences[0]}",
        {
            "period_id": anchor.period_id,
            "differences": differences[:DIFFERENCES_MAX],
            "difference_count": len(differences),
        },
    )
