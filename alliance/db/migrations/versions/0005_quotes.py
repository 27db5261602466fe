"""quotes: a self-custody member's quote, the reservation of its conversion's request id

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 07:15:00.000000

Additive: a new table; existing rows are untouched.
"""

import sqlalchemy as sa
from alembic import op

import alliance.db.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quotes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("brand_code", sa.String(length=32), nullable=False),
        sa.Column("expires_at", alliance.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_at", alliance.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_quotes_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quotes")),
    )
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quotes_member_id"), ["member_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quotes_member_id"))
    op.drop_table("quotes")
