"""Readiness checks: does the database answer, does the chain answer."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from gateway import errors
from gateway.ledger import Ledger


def check_database(engine: Engine) -> None:
    """`database_unavailable` unless a trivial query succeeds."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        raise errors.DatabaseUnavailable("the database does not answer") from None


def check_chain(ledger: Ledger) -> None:
    """`chain_unavailable` unless the node reports its block number."""
    if not ledger.is_reachable():
        raise errors.ChainUnavailable("the chain is unreachable")
