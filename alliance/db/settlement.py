"""Settlement tables: the indexed chain, its checkpoint, runs, discrepancies, brand reports.

See docs/settlement.md ("Database") for who writes each table. The indexer writes
`chain_events` with Core bulk inserts (`chain_events_table`), never ORM objects per row:
a busy day is millions of rows.

uint256 values (amounts, request ids) do not fit a 64-bit integer column. PostgreSQL keeps
them as NUMERIC(78,0); SQLite, whose NUMERIC affinity would turn large values into lossy
REAL, keeps them as decimal text. `Uint256` hides the difference: Python always sees `int`.
Sums over these columns are done in Python, never in SQL (text does not add up on SQLite).
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Dialect,
    Integer,
    Numeric,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from alliance.db.base import Base, Timestamped, UtcDateTime, utc_now

UINT256_DIGITS = 78
"""Decimal digits of the largest uint256 (2^256 - 1 has 78)."""


class Uint256(TypeDecorator[int]):
    """A non-negative integer below 2^256: NUMERIC(78,0) on PostgreSQL, text elsewhere."""

    impl = String(UINT256_DIGITS)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(UINT256_DIGITS, 0, asdecimal=True))
        return dialect.type_descriptor(String(UINT256_DIGITS))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        assert 0 <= value < 2**256, value
        return Decimal(value) if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


class ChainEventRow(Base):
    """One alliance contract log, decoded. Hot fields have typed columns; `args` keeps every
    argument (integers as decimal text, bytes as 0x-hex) so nothing read is lost.

    Only the primary key is indexed: every reader scans block ranges, and each secondary
    index would slow the bulk ingest of a busy day (millions of rows) for no reader."""

    __tablename__ = "chain_events"

    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_hash: Mapped[str] = mapped_column(String(66), nullable=False)
    address: Mapped[str] = mapped_column(String(42), nullable=False)
    name: Mapped[str] = mapped_column(String(40), nullable=False)
    request_id: Mapped[int | None] = mapped_column(Uint256(), nullable=True)
    account: Mapped[str | None] = mapped_column(String(42), nullable=True)
    """Transfer: from; mint and burn: account; Converted: member; Gifted: from."""
    counterparty: Mapped[str | None] = mapped_column(String(42), nullable=True)
    """Transfer: to; Gifted: to; Converted: toToken."""
    amount: Mapped[int | None] = mapped_column(Uint256(), nullable=True)
    """Transfer: value; mint and burn: amount; Converted: amountIn; Gifted: amount."""
    args: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


chain_events_table: Table = ChainEventRow.__table__  # type: ignore[assignment]
"""The Core table behind `ChainEventRow`, for bulk inserts and streaming reads."""


class IndexCheckpoint(Base):
    """How far an index has read: every event up to `block_number` (inclusive) is stored.
    Written in the same transaction as the window's rows, so a crash resumes cleanly."""

    __tablename__ = "index_checkpoints"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger, nullable=False)
    block_hash: Mapped[str] = mapped_column(String(66), nullable=False)
    """Hash of `block_number`: a different hash later means the chain reorganised below
    the confirmation depth, which the indexer reports instead of trusting stale rows."""
    from_block: Mapped[int] = mapped_column(BigInteger, nullable=False)
    """The first block indexed (the deployment block)."""
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=utc_now, onupdate=utc_now, nullable=False
    )


class RunStatus(enum.StrEnum):
    """How far a period's settlement run got; each step is recorded before the next."""

    STARTED = "started"
    RECONCILED = "reconciled"
    ANCHORED = "anchored"
    COMPLETE = "complete"


class SettlementRun(Timestamped, Base):
    """One period's close. Reconciliation results and brand reports are frozen into it at
    `reconciled`, so a re-run rebuilds byte-identical statements from the same inputs."""

    __tablename__ = "settlement_runs"

    period_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    opening_block: Mapped[int] = mapped_column(BigInteger, nullable=False)
    closing_block: Mapped[int] = mapped_column(BigInteger, nullable=False)
    balances_root: Mapped[str | None] = mapped_column(String(66), nullable=True)
    statements_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    statements_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The canonical statements file (what `statements_hash` hashes), served to brands."""
    reported_liability: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    """Brand reports as they stood when the period was reconciled (brand → points)."""
    operations_high_water: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """The last gateway operation id this period reconciled; the next period starts after."""
    anchor_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class DiscrepancyKind(enum.StrEnum):
    """What reconciliation found (docs/settlement.md, "Reconciliation")."""

    UNKNOWN_TO_GATEWAY = "unknown_to_gateway"
    MISSING_ON_CHAIN = "missing_on_chain"
    AMOUNT_MISMATCH = "amount_mismatch"
    BALANCE_DRIFT = "balance_drift"
    BRAND_TOTAL_MISMATCH = "brand_total_mismatch"
    INDEX_GAP = "index_gap"


class Discrepancy(Base):
    """One break between two books, with the evidence to chase it. Reported, never fixed."""

    __tablename__ = "settlement_discrepancies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    period_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    brand_code: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    request_id: Mapped[int | None] = mapped_column(Uint256(), nullable=True)
    transaction_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, nullable=False)


class BrandReport(Timestamped, Base):
    """A brand's own figure for its outstanding liability (points) at a period's close."""

    __tablename__ = "settlement_brand_reports"

    period_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    brand_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    liability_points: Mapped[int] = mapped_column(Uint256(), nullable=False)
    reported_by: Mapped[str] = mapped_column(String(64), nullable=False)


class Acknowledgement(Base):
    """A brand's on-chain acknowledgement of an anchored period, sent by the gateway."""

    __tablename__ = "settlement_acknowledgements"

    period_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    brand_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    transaction_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    acknowledged_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, nullable=False)
