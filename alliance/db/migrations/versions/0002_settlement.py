"""settlement: indexed chain events, index checkpoint, runs, discrepancies, brand reports

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 04:02:58.796582
"""

import sqlalchemy as sa
from alembic import op

import alliance.db.base
import alliance.db.settlement

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_events",
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("transaction_hash", sa.String(length=66), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("request_id", alliance.db.settlement.Uint256(length=78), nullable=True),
        sa.Column("account", sa.String(length=42), nullable=True),
        sa.Column("counterparty", sa.String(length=42), nullable=True),
        sa.Column("amount", alliance.db.settlement.Uint256(length=78), nullable=True),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index", name=op.f("pk_chain_events")),
    )
    op.create_table(
        "index_checkpoints",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("from_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", alliance.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_index_checkpoints")),
    )
    op.create_table(
        "settlement_acknowledgements",
        sa.Column("period_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("brand_code", sa.String(length=32), nullable=False),
        sa.Column("transaction_hash", sa.String(length=66), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", alliance.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "period_id", "brand_code", name=op.f("pk_settlement_acknowledgements")
        ),
    )
    op.create_table(
        "settlement_brand_reports",
        sa.Column("period_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("brand_code", sa.String(length=32), nullable=False),
        sa.Column("liability_points", alliance.db.settlement.Uint256(length=78), nullable=False),
        sa.Column("reported_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", alliance.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", alliance.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "period_id", "brand_code", name=op.f("pk_settlement_brand_reports")
        ),
    )
    op.create_table(
        "settlement_discrepancies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("period_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("brand_code", sa.String(length=32), nullable=True),
        sa.Column("request_id", alliance.db.settlement.Uint256(length=78), nullable=True),
        sa.Column("transaction_hash", sa.String(length=66), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("created_at", alliance.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_discrepancies")),
    )
    with op.batch_alter_table("settlement_discrepancies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_discrepancies_brand_code"), ["brand_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_settlement_discrepancies_period_id"), ["period_id"], unique=False
        )
    op.create_table(
        "settlement_runs",
        sa.Column("period_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opening_block", sa.BigInteger(), nullable=False),
        sa.Column("closing_block", sa.BigInteger(), nullable=False),
        sa.Column("balances_root", sa.String(length=66), nullable=True),
        sa.Column("statements_hash", sa.String(length=66), nullable=True),
        sa.Column("statements_json", sa.Text(), nullable=True),
        sa.Column("reported_liability", sa.JSON(), nullable=True),
        sa.Column("operations_high_water", sa.BigInteger(), nullable=True),
        sa.Column("anchor_tx", sa.String(length=66), nullable=True),
        sa.Column("completed_at", alliance.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", alliance.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", alliance.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("period_id", name=op.f("pk_settlement_runs")),
    )
    with op.batch_alter_table("settlement_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_settlement_runs_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("settlement_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_runs_status"))
    op.drop_table("settlement_runs")
    with op.batch_alter_table("settlement_discrepancies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_discrepancies_period_id"))
        batch_op.drop_index(batch_op.f("ix_settlement_discrepancies_brand_code"))
    op.drop_table("settlement_discrepancies")
    op.drop_table("settlement_brand_reports")
    op.drop_table("settlement_acknowledgements")
    op.drop_table("index_checkpoints")
    op.drop_table("chain_events")
