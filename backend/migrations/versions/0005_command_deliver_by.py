"""command.deliver_by: a command's delivery deadline on the wall clock

Its timeline (created_at, updated_at) is street time, which may run 60 times faster than the
wall clock, pause or jump; the delivery timeout is about the machinery and stays on the wall
clock (docs/architecture.md, "Two clocks"). Rows from before have none: upkeep then uses
created_at plus the timeout, as it did.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.models import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("command") as batch_op:
        batch_op.add_column(sa.Column("deliver_by", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("command") as batch_op:
        batch_op.drop_column("deliver_by")
