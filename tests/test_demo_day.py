"""The whole product on one machine, as README promises: scripts/demo_day.py.

Runs `alliance up` (chain, alliance, gateway, settlement service), `alliance demo` over
HTTP, closes the day with `alliance settle` (anchored on chain) and re-derives it with
`alliance audit verify`, every step a real process; the script exits non-zero if any does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_day_settles_anchors_and_audits_clean(repo_root: Path) -> None:
    finished = subprocess.run(
        [sys.executable, str(repo_root / "scripts" / "demo_day.py")],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "0 discrepancies" in finished.stdout
    assert "anchored now" in finished.stdout
    assert "OK: no findings" in finished.stdout
