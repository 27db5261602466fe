"""The period's human-readable statement: one HTML file, charts as inline SVG.

No JavaScript, no network, no clock: a finance or audit person opens it anywhere, and the
same statements render to the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

BAR_HEIGHT = 22
CHART_WIDTH = 640
LABEL_WIDTH = 150
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:60em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.ok{color:#176317}.warn{color:#a30000}code{font-size:.85em;word-break:break-all}
"""


def bar_chart(title: str, bars: Sequence[tuple[str, int]], unit: str) -> str:
    """Horizontal bars, one per (label, value); negative values drawn leftwards."""
    if not bars:
        return f"<p><em>{escape(title)}: nothing in this period.</em></p>"
    largest = max(abs(value) for _, value in bars) or 1
    has_negative = any(value < 0 for _, value in bars)
    span = CHART_WIDTH - LABEL_WIDTH - 160
    zero_x = LABEL_WIDTH + (span // 2 if has_negative else 0)
    scale = span // 2 if has_negative else span
    height = BAR_HEIGHT * len(bars) + 30
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{CHART_WIDTH}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>',
    ]
    for index, (label, value) in enumerate(bars):
        y = 24 + index * BAR_HEIGHT
        width = abs(value) * scale // largest
        x = zero_x if value >= 0 else zero_x - width
        colour = "#3b7dd8" if value >= 0 else "#d8663b"
        parts += [
            f'<text x="0" y="{y + 15}">{escape(label)}</text>',
            f'<rect x="{x}" y="{y + 3}" width="{max(width, 1)}" height="{BAR_HEIGHT - 6}" '
            f'fill="{colour}"/>',
            f'<text x="{zero_x + scale + 6 if has_negative else zero_x + width + 6}" '
            f'y="{y + 15}">{escape(_short(value))} {escape(unit)}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)


def _short(value: int) -> str:
    return f"{value:,}"


def _units(value_units: str) -> int:
    """Whole value units (for chart lengths only; the tables print exact figures)."""
    return int(value_units) // 10**18


def render_report(
    document: Mapping[str, Any],
    discrepancies: Sequence[Mapping[str, Any]],
    alerts: Sequence[Mapping[str, Any]],
    anchor: Mapping[str, Any],
) -> str:
    """The report page of one period."""
    brands = document["brands"]
    flows = [(f"{f['from']} → {f['to']}", _units(f["value_units"])) for f in document["flows"]]
    liability = [(b["brand"], int(b["closing_supply"])) for b in brands]
    nets = [(b["brand"], _units(b["multilateral_net_units"])) for b in brands]
    alert_counts = [(b["brand"], int(b["alerts"])) for b in brands if b["alerts"]]
    sections = [
        f"<h1>Alliance settlement, period {document['period_id']}</h1>",
        _summary(document, discrepancies, alerts, anchor),
        "<h2>Flows between brands</h2>",
        bar_chart("Value moved (whole value units)", flows, "units"),
        _table(
            ["from", "to", "count", "points in", "points out", "fee points", "currency"],
            [
                [
                    f["from"],
                    f["to"],
                    f["count"],
                    f["points_in"],
                    f["points_out"],
                    f["fee_points"],
                    f["currency"],
                ]
                for f in document["flows"]
            ],
        ),
        "<h2>Who pays whom</h2>",
        _table(
            ["payer", "payee", f"amount ({escape(document['currency'])})"],
            [[b["payer"], b["payee"], b["currency"]] for b in document["bilateral"]],
        ),
        bar_chart("Multilateral net (+ receives, - pays; whole units)", nets, "units"),
        "<h2>Liability per brand</h2>",
        bar_chart("Outstanding points at the close", liability, "points"),
        _table(
            ["brand", "opening", "closing", "net (currency)", "reported", "discrepancies"],
            [
                [
                    b["brand"],
                    b["opening_supply"],
                    b["closing_supply"],
                    b["multilateral_net_currency"],
                    b["reported_liability"] or "—",
                    b["discrepancies"],
                ]
                for b in brands
            ],
        ),
        "<h2>Alerts</h2>",
        bar_chart("Fraud alerts per brand", alert_counts, "alerts"),
        "<h2>Discrepancies</h2>",
        _table(
            ["kind", "brand", "request id", "transaction"],
            [
                [d["kind"], d["brand"] or "", d["request_id"] or "", d["transaction_hash"] or ""]
                for d in discrepancies
            ],
        ),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Settlement {document['period_id']}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )


def _summary(
    document: Mapping[str, Any],
    discrepancies: Sequence[Mapping[str, Any]],
    alerts: Sequence[Mapping[str, Any]],
    anchor: Mapping[str, Any],
) -> str:
    state = "ok" if not discrepancies else "warn"
    return (
        f"<p>Blocks {document['opening_block']} to {document['closing_block']} "
        f"({escape(document['time_zone'])}), peg {escape(document['peg'])} "
        f"{escape(document['currency'])} per value unit.</p>"
        f'<p class="{state}">{len(discrepancies)} discrepancies, {len(alerts)} alerts.</p>'
        f"<p>Balances root <code>{escape(document['balances_root'])}</code><br>"
        f"Statements hash <code>{escape(str(anchor.get('statements_hash', '')))}</code><br>"
        f"Anchor transaction <code>{escape(str(anchor.get('transaction_hash') or '—'))}</code></p>"
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return "<p><em>None.</em></p>"
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
