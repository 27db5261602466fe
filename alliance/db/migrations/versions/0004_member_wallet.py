"""members.wallet: whether a member's address is their own wallet (self-custody)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 06:50:00.000000

Additive: existing members keep their gateway-derived addresses (wallet false).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("wallet", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("wallet")
