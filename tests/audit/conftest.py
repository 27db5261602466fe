"""Fixtures of the audit tests: a read-only JSON-RPC client and the settlement stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alliance.rpc import JsonRpc
from tests.audit.support import Settlement
from tests.support.alliance import DeployedAlliance


@pytest.fixture
def rpc(alliance: DeployedAlliance) -> Iterator[JsonRpc]:
    """The audit's raw JSON-RPC client on the test alliance's chain."""
    with JsonRpc(alliance.client.w3.provider.endpoint_uri) as client:  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def settlement(alliance: DeployedAlliance, tmp_path: Path) -> Settlement:
    """Activity and settled periods, published under tmp_path/statements."""
    return Settlement(alliance, tmp_path / "statements")
