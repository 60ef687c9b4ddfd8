"""Prometheus metrics, read from the ingest counters and the database at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from backend.models import Alarm, Device, table
from contracts.vocabulary import AlarmStatus

if TYPE_CHECKING:
    from backend.api.context import AppContext


class LijiaCollector(Collector):
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        from backend.quality import sequence_gaps

        ctx, s = self.ctx, self.ctx.ingest.stats
        for name, value, doc in (
            ("lijia_ingest_received", s.received, "MQTT messages received by ingest"),
            ("lijia_ingest_stored", s.stored, "events stored (new event ids)"),
            ("lijia_ingest_duplicates", s.duplicates, "redelivered events suppressed"),
            ("lijia_ingest_db_errors", s.db_errors, "failed batch commits (retried)"),
            ("lijia_broker_dropped", s.broker_dropped, "messages the broker dropped (queues full)"),
            (
                "lijia_broker_dropped_since_backend_start",
                s.drops.since_start,
                "messages the broker dropped since this backend started",
            ),
            (
                "lijia_retained_discarded",
                s.retained_discarded,
                "retained messages refused on channels that are never retained",
            ),
            ("lijia_retained_clears_sent", s.retained_clears_sent, "their broker copies cleared"),
            (
                "lijia_retained_clears_ignored",
                s.retained_clears_ignored,
                "empty retained messages (clears) acknowledged and ignored",
            ),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        yield GaugeMetricFamily(
            "lijia_broker_dropped_recent",
            f"messages the broker dropped in the last {s.drops.window_s:g} s",
            value=s.drops.recent(),
        )
        dead = CounterMetricFamily(
            "lijia_ingest_dead_letters", "refused messages", labels=["reason"]
        )
        for reason, n in sorted(s.reasons.items()):
            dead.add_metric([reason], n)
        yield dead
        yield GaugeMetricFamily(
            "lijia_ingest_lag_seconds",
            "age of the oldest uncommitted message",
            value=ctx.ingest.lag_seconds(),
        )
        yield GaugeMetricFamily(
            "lijia_ingest_queue_depth",
            "messages waiting for the writer",
            value=ctx.ingest.queue.qsize(),
        )
        yield GaugeMetricFamily(
            "lijia_broker_connected",
            "1 if the ingest session is up",
            value=float(ctx.ingest.connected.is_set()),
        )
        yield GaugeMetricFamily(
            "lijia_live_clients", "open live-stream connections", value=ctx.live.clients
        )
        live = ctx.live
        for name, value, doc in (
            ("lijia_live_frames", live.frames, "messages published to the live stream"),
            ("lijia_live_resyncs", live.resyncs, "resyncs sent to subscribers that fell behind"),
            ("lijia_live_missed", live.missed, "messages subscribers lost by falling behind"),
            ("lijia_live_stalled", live.stalled, "subscribers disconnected: accepted nothing"),
            ("lijia_live_refused", live.refused, "subscriptions refused: too many subscribers"),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        try:
            with ctx.engine.connect() as conn:
                alarm: Any = table(Alarm).c
                dev: Any = table(Device).c
                open_rows: Any = conn.execute(
                    select(alarm.severity, func.count())
                    .where(alarm.status != AlarmStatus.CLEARED)
                    .group_by(alarm.severity)
                ).all()
                avail_rows: Any = conn.execute(
                    select(dev.availability, func.count()).group_by(dev.availability)
                ).all()
        except Exception:
            return
        alarms = GaugeMetricFamily("lijia_alarms_open", "open alarms", labels=["severity"])
        for severity, count in open_rows:
            alarms.add_metric([str(severity)], float(count))
        yield alarms
        devices = GaugeMetricFamily(
            "lijia_devices", "devices by availability", labels=["availability"]
        )
        for availability, count in avail_rows:
            devices.add_metric([str(availability)], float(count))
        yield devices
        gaps = sequence_gaps(ctx.engine, ctx.settings.retention_days)
        missing = GaugeMetricFamily(
            "lijia_sequence_missing", "messages missing by sequence gaps", labels=["device_id"]
        )
        for g in gaps:
            missing.add_metric([g.device_id], float(g.missing))
        yield missing
