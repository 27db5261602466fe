"""Named crash points for the kill -9 tests.

`ALLIANCE_GATEWAY_FAILPOINT=<name>` makes the process SIGKILL itself when it reaches that
point, exactly as an operator's `kill -9` or a power cut would, so the tests can hit each
crash window of the pipeline deterministically. Unset (always, outside those tests), a
failpoint is one environment lookup.
"""

from __future__ import annotations

import os
import signal

ENVIRONMENT_VARIABLE = "ALLIANCE_GATEWAY_FAILPOINT"

BEFORE_SIGNING = "before_signing"
"""Operations are accepted (committed) and picked up, nothing signed yet."""
AFTER_RECORD_BEFORE_SEND = "after_record_before_send"
"""The signed transaction and nonce are committed, nothing sent."""
AFTER_SEND_BEFORE_SETTLE = "after_send_before_settle"
"""The transaction was sent (and mined on Anvil), the receipt not yet recorded."""


def failpoint(name: str) -> None:
    """Die here, without cleanup, if the environment names this point."""
    if os.environ.get(ENVIRONMENT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
