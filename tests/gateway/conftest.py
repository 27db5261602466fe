"""Fixtures of the gateway suite: a real stack per session — Anvil in a temporary data dir,
the alliance deployed there by `alliance.deploy.ensure_deployed`, and the gateway served by
`alliance gateway serve` in a subprocess — and the HTTP client the tests call it with.

Backend: SQLite in the stack's data dir by default. With `ALLIANCE_TEST_DATABASE_URL` set to
a PostgreSQL URL (`postgresql+psycopg://postgres@127.0.0.1:5432/alliance_test`), every stack
gets a fresh database on that server (dropped and created, `<name>_<stack>`), so runs are
independent; they are dropped again at the end of the session.

Modules that stop the chain or kill the gateway build their own stack (`build_stack`), so
the session stack the other modules share is never left half-broken.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from alliance.compiler import CompileResult
from tests.gateway.api_client import Api
from tests.gateway.stack import (
    DATABASE_URL_VARIABLE,
    Books,
    ChainView,
    Databases,
    Stack,
    build_stack,
)


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    """Where each stack's gateway keeps its books (see the module docstring)."""
    databases = Databases(os.environ.get(DATABASE_URL_VARIABLE) or None)
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def stack(
    compiled: CompileResult, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The session's stack, shared by every module that leaves chain and gateway running."""
    with build_stack("main", tmp_path_factory.mktemp("gateway-main"), databases) as built:
        yield built


@pytest.fixture
def api(stack: Stack) -> Api:
    """The session gateway's HTTP API (restarted first if an earlier test left it down)."""
    stack.ensure_gateway()
    return stack.api


@pytest.fixture
def books(stack: Stack) -> Books:
    """The session gateway's database, read-only."""
    return stack.books


@pytest.fixture
def ledger(stack: Stack) -> ChainView:
    """The session chain: balances, events, freezer keys."""
    return stack.ledger
