"""The period's statements document: built from plain records, canonical bytes, hash.

`statements.json` (docs/settlement.md, "Statements") is what the settlement service
publishes and anchors (`statementsHash = keccak256(file bytes)`), and what an auditor
recomputes from a replay of the chain. Both sides feed the same pure functions here:

1. `PeriodActivity` accumulates the period's events one at a time (mints and burns by
   reason, conversions, gifts): memory grows with brands, not with events;
2. `build_statements(facts, activity)` turns that plus the period's facts (blocks, supplies,
   balances root, peg, reconciliation counts) into the document;
3. `canonical_bytes(doc)` and `statements_hash(bytes)` give the file and its hash.

Amounts are decimal strings (value units exceed 2^53, which JSON readers would round).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from eth_utils import keccak

from alliance.netting import (
    Conversion,
    FlowBook,
    bilateral_nets,
    currency_text,
    decimal_text,
    multilateral_nets,
    value_totals,
)

FORMAT = "alliance-statements/1"
"""The document's format tag; bumped on any change of its shape or meaning."""

REASONS = ("none", "deposit", "withdrawal", "conversion", "expiry", "correction")
"""Lower-case names of `IPointToken.Reason`, by code (the keys of `minted` and `burned`)."""

BRAND_CSV_COLUMNS = (
    "brand",
    "token",
    "opening_supply",
    "minted",
    "burned",
    "converted_in_points",
    "converted_out_points",
    "gifted_points",
    "closing_supply",
    "value_in_units",
    "value_out_units",
    "fees_earned_units",
    "multilateral_net_units",
    "multilateral_net_currency",
    "reported_liability",
    "discrepancies",
    "alerts",
)

FLOW_CSV_COLUMNS = (
    "from",
    "to",
    "count",
    "points_in",
    "points_out",
    "fee_points",
    "fee_value_units",
    "value_units",
    "currency",
)


def reason_name(code: int) -> str:
    """The statement key of a `Reason` code (unknown codes keep their number, visibly)."""
    return REASONS[code] if 0 <= code < len(REASONS) else f"reason_{code}"


@dataclass
class PeriodActivity:
    """What happened in a period, per brand, accumulated one event at a time."""

    flows: FlowBook = field(default_factory=FlowBook)
    minted: dict[str, dict[str, int]] = field(default_factory=dict)
    burned: dict[str, dict[str, int]] = field(default_factory=dict)
    gifted: dict[str, int] = field(default_factory=dict)

    def add_conversion(self, conversion: Conversion) -> None:
        self.flows.add(conversion)

    def add_mint(self, brand: str, reason: int, amount: int) -> None:
        """A `PointsMinted` of `brand`'s token."""
        by_reason = self.minted.setdefault(brand, {})
        key = reason_name(reason)
        by_reason[key] = by_reason.get(key, 0) + amount

    def add_burn(self, brand: str, reason: int, amount: int) -> None:
        """A `PointsBurned` of `brand`'s token."""
        by_reason = self.burned.setdefault(brand, {})
        key = reason_name(reason)
        by_reason[key] = by_reason.get(key, 0) + amount

    def add_gift(self, brand: str, amount: int) -> None:
        """A `Gifted` of `brand`'s points (moves points between members; supply unchanged)."""
        self.gifted[brand] = self.gifted.get(brand, 0) + amount


@dataclass(frozen=True)
class BrandInfo:
    """A brand as the statements name it: its code and its token (lower-case 0x-hex)."""

    code: str
    token: str


@dataclass(frozen=True)
class PeriodFacts:
    """Everything about a period that is not an event sum."""

    period_id: int
    time_zone: str
    opening_block: int
    closing_block: int
    balances_root: bytes
    peg: Decimal
    currency: str
    brands: Sequence[BrandInfo]
    opening_supply: Mapping[str, int]
    """Each token's totalSupply at opening_block - 1 (the previous closing block)."""
    closing_supply: Mapping[str, int]
    """Each token's totalSupply at closing_block."""
    reported_liability: Mapping[str, int] = field(default_factory=dict)
    """Brand-reported totals; brands that did not report are absent (null in the file)."""
    discrepancies: Mapping[str, int] = field(default_factory=dict)
    """Reconciliation discrepancies per brand."""
    alerts: Mapping[str, int] = field(default_factory=dict)
    """Fraud alerts per brand."""


def build_statements(facts: PeriodFacts, activity: PeriodActivity) -> dict[str, Any]:
    """The statements document of docs/settlement.md (plain JSON types only)."""
    codes = sorted(brand.code for brand in facts.brands)
    flows = activity.flows.flows()
    nets = multilateral_nets(flows, codes)
    value_out, value_in = value_totals(flows)
    fees: dict[str, int] = {}
    converted_out: dict[str, int] = {}
    converted_in: dict[str, int] = {}
    for flow in flows:
        fees[flow.to_brand] = fees.get(flow.to_brand, 0) + flow.fee_value_units
        converted_out[flow.from_brand] = converted_out.get(flow.from_brand, 0) + flow.points_in
        converted_in[flow.to_brand] = converted_in.get(flow.to_brand, 0) + flow.points_out
    brands = []
    for brand in sorted(facts.brands, key=lambda item: item.code):
        code = brand.code
        reported = facts.reported_liability.get(code)
        brands.append(
            {
                "brand": code,
                "token": brand.token.lower(),
                "opening_supply": str(facts.opening_supply[code]),
                "minted": _amounts(activity.minted.get(code, {})),
                "burned": _amounts(activity.burned.get(code, {})),
                "converted_out_points": str(converted_out.get(code, 0)),
                "converted_in_points": str(converted_in.get(code, 0)),
                "gifted_points": str(activity.gifted.get(code, 0)),
                "closing_supply": str(facts.closing_supply[code]),
                "value_out_units": str(value_out.get(code, 0)),
                "value_in_units": str(value_in.get(code, 0)),
                "fees_earned_units": str(fees.get(code, 0)),
                "multilateral_net_units": str(nets[code]),
                "multilateral_net_currency": currency_text(nets[code], facts.peg),
                "reported_liability": None if reported is None else str(reported),
                "discrepancies": facts.discrepancies.get(code, 0),
                "alerts": facts.alerts.get(code, 0),
            }
        )
    return {
        "format": FORMAT,
        "period_id": facts.period_id,
        "time_zone": facts.time_zone,
        "opening_block": facts.opening_block,
        "closing_block": facts.closing_block,
        "balances_root": "0x" + facts.balances_root.hex(),
        "peg": decimal_text(facts.peg),
        "currency": facts.currency,
        "flows": [_flow_entry(flow, facts.peg) for flow in flows],
        "bilateral": [
            {
                "payer": net.payer,
                "payee": net.payee,
                "value_units": str(net.value_units),
                "currency": currency_text(net.value_units, facts.peg),
            }
            for net in bilateral_nets(flows)
        ],
        "brands": brands,
    }


def _amounts(by_reason: Mapping[str, int]) -> dict[str, str]:
    return {reason: str(amount) for reason, amount in sorted(by_reason.items())}


def _flow_entry(flow: Any, peg: Decimal) -> dict[str, Any]:
    return {
        "from": flow.from_brand,
        "to": flow.to_brand,
        "count": flow.count,
        "points_in": str(flow.points_in),
        "points_out": str(flow.points_out),
        "fee_points": str(flow.fee_points),
        "fee_value_units": str(flow.fee_value_units),
        "value_units": str(flow.value_units),
        "currency": currency_text(flow.value_units, peg),
    }


def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    """The file's exact bytes: sorted keys, no spaces, ASCII, no trailing newline."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("utf-8")


def statements_hash(data: bytes) -> bytes:
    """keccak256 of the file's bytes: the `statementsHash` anchored on chain."""
    return bytes(keccak(data))


def tie_out_failures(document: Mapping[str, Any]) -> list[str]:
    """Brands whose statement does not tie out (empty when all do).

    opening + Σ minted + converted_in - Σ burned - converted_out must equal closing.
    """
    failures = []
    for brand in document["brands"]:
        expected = (
            int(brand["opening_supply"])
            + sum(int(amount) for amount in brand["minted"].values())
            + int(brand["converted_in_points"])
            - sum(int(amount) for amount in brand["burned"].values())
            - int(brand["converted_out_points"])
        )
        if expected != int(brand["closing_supply"]):
            failures.append(
                f"{brand['brand']}: expected {expected}, closing {brand['closing_supply']}"
            )
    return failures


def brand_statement(document: Mapping[str, Any], code: str) -> dict[str, Any]:
    """One brand's statement: the period header, its own figures, and the flows and
    bilateral nets it is party to (what the gateway hands that brand)."""
    (own,) = [brand for brand in document["brands"] if brand["brand"] == code]
    header_keys = ("format", "period_id", "time_zone", "opening_block", "closing_block")
    header = {key: document[key] for key in header_keys}
    return {
        **header,
        "balances_root": document["balances_root"],
        "peg": document["peg"],
        "currency": document["currency"],
        "brand": own,
        "flows": [f for f in document["flows"] if code in (f["from"], f["to"])],
        "bilateral": [b for b in document["bilateral"] if code in (b["payer"], b["payee"])],
    }


def statements_csv(brands: Sequence[Mapping[str, Any]]) -> str:
    """One row per brand; minted and burned as `reason=amount` lists."""
    rows = []
    for brand in brands:
        row = dict(brand)
        row["minted"] = _reasons_cell(brand["minted"])
        row["burned"] = _reasons_cell(brand["burned"])
        row["reported_liability"] = brand["reported_liability"] or ""
        rows.append(row)
    return _csv(BRAND_CSV_COLUMNS, rows)


def flows_csv(flows: Sequence[Mapping[str, Any]]) -> str:
    """One row per pair flow."""
    return _csv(FLOW_CSV_COLUMNS, flows)


def _reasons_cell(by_reason: Mapping[str, str]) -> str:
    return ";".join(f"{reason}={amount}" for reason, amount in sorted(by_reason.items()))


def _csv(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: row[column] for column in columns})
    return buffer.getvalue()
