"""Named crash points for the settlement kill -9 tests.

`ALLIANCE_SETTLEMENT_FAILPOINT=<name>` makes the process SIGKILL itself when it reaches
that point, as a power cut would. Unset (always, outside those tests), a failpoint is one
environment lookup.
"""

from __future__ import annotations

import os
import signal

ENVIRONMENT_VARIABLE = "ALLIANCE_SETTLEMENT_FAILPOINT"

INDEXER_BEFORE_CHECKPOINT = "indexer_before_checkpoint"
"""A window's rows are written, its checkpoint not yet (same transaction)."""
AFTER_RECONCILE = "after_reconcile"
"""The period is reconciled and frozen, nothing anchored."""
AFTER_ANCHOR_SENT = "after_anchor_sent"
"""The anchor transaction is mined, the run row not yet marked anchored."""
BEFORE_OUTPUTS = "before_outputs"
"""The period is anchored, its output files not yet written."""


def failpoint(name: str) -> None:
    """Die here, without cleanup, if the environment names this point."""
    if os.environ.get(ENVIRONMENT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
