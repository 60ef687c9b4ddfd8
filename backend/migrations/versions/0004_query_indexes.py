"""indexes for the slow queries of the benchmark (docs/benchmarks.md, section 5 and section 1)

- event (type, id): the API's event listing filtered by type, newest first. Without it
  SQLite plans `SCAN event` and a rare type reads most of the table for each page. Not
  (channel, type, id): every listing filters on channel, and SQLite then chose that index for
  the unfiltered listing too and sorted half the table (a type implies its channel anyway).
- event (device_id, type, ts): the alarm engine's burst rules count one device's events of one
  type in a window of device time, for every matching event; with only (device_id, id) that
  read all of the device's rows.
- stat_hourly (hour, kind, stat): `/stats` reads one day of hourly counts; without it every
  call read the whole table, which grows with history (it outlives the retention purge).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("event") as batch_op:
        batch_op.create_index("ix_event_type_id", ["type", "id"])
        batch_op.create_index("ix_event_device_id_type_ts", ["device_id", "type", "ts"])
    with op.batch_alter_table("stat_hourly") as batch_op:
        batch_op.create_index("ix_stat_hourly_hour_kind_stat", ["hour", "kind", "stat"])


def downgrade() -> None:
    with op.batch_alter_table("stat_hourly") as batch_op:
        batch_op.drop_index("ix_stat_hourly_hour_kind_stat")
    with op.batch_alter_table("event") as batch_op:
        batch_op.drop_index("ix_event_device_id_type_ts")
        batch_op.drop_index("ix_event_type_id")
