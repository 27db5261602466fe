"""Fixtures of the settlement suite: a real stack (Anvil, the test alliance, the gateway in a
subprocess, SQLite or PostgreSQL) built with the gateway suite's `build_stack`."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.gateway.stack import DATABASE_URL_VARIABLE, Databases


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    """Each stack's database (SQLite by default, PostgreSQL with ALLIANCE_TEST_DATABASE_URL)."""
    databases = Databases(os.environ.get(DATABASE_URL_VARIABLE) or None)
    yield databases
    databases.drop_all()
