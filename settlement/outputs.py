"""A period's output files, written atomically; identical inputs give identical bytes.

`<data_dir>/settlement/<period_id>/`: statements.json (the hashed file), statements.csv,
flows.csv, discrepancies.json, alerts.json, report.html, anchor.json.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from alliance.statements import flows_csv, statements_csv
from settlement.report import render_report


def period_dir(data_dir: Path, period_id: int) -> Path:
    return data_dir / "settlement" / str(period_id)


def pretty_json(value: Any) -> bytes:
    """Stable, readable JSON (sorted keys, two-space indent, trailing newline)."""
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode()


def write_atomically(path: Path, data: bytes) -> None:
    """Write through a temporary file and rename, so readers never see half a file."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def write_outputs(
    directory: Path,
    statements_bytes: bytes,
    document: Mapping[str, Any],
    discrepancies: Sequence[Mapping[str, Any]],
    alerts: Sequence[Mapping[str, Any]],
    anchor: Mapping[str, Any],
) -> list[Path]:
    """Write every output file of the period; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "statements.json": statements_bytes,
        "statements.csv": statements_csv(document["brands"]).encode(),
        "flows.csv": flows_csv(document["flows"]).encode(),
        "discrepancies.json": pretty_json(list(discrepancies)),
        "alerts.json": pretty_json(list(alerts)),
        "report.html": render_report(document, discrepancies, alerts, anchor).encode(),
        "anchor.json": pretty_json(dict(anchor)),
    }
    for name, data in files.items():
        write_atomically(directory / name, data)
    return [directory / name for name in files]
