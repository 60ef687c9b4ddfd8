"""broker_observation: the broker's drop counter as ingest last saw it

Mosquitto's `$SYS/broker/publish/messages/dropped` counts from the broker's start. Keeping the
last value seen (with the broker's uptime and when we saw it) lets a backend that was away while
the broker dropped messages report them when it returns (backend/ingest/drops.py).

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.models import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "broker_observation",
        sa.Column("broker", sa.String(), nullable=False),
        sa.Column("dropped", sa.Integer(), nullable=False),
        sa.Column("uptime_s", sa.Integer(), nullable=False),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("broker"),
    )


def downgrade() -> None:
    op.drop_table("broker_observation")
