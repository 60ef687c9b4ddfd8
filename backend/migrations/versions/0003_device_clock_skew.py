"""device.clock_skew_s, device.clock_skewed: how far the device's clock is from ours

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("device") as batch_op:
        batch_op.add_column(sa.Column("clock_skew_s", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("clock_skewed", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("device") as batch_op:
        batch_op.drop_column("clock_skewed")
        batch_op.drop_column("clock_skew_s")
