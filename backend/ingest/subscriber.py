"""The subscriber end of ingest: persistent MQTT session, bounded hand-off queue, a writer thread
committing batches, ack after commit; retained copies refused on their channel cleared at the
broker; the broker's drop counter followed (backend/ingest/drops.py)."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy.engine import Engine

from backend.alarms import AlarmEngine
from backend.config import Settings
from backend.ingest.classify import Incoming
from backend.ingest.commit import Committer
from backend.ingest.dead_letters import STORAGE_ERROR
from backend.ingest.drops import (
    SYS_DROPPED,
    SYS_UPTIME,
    load_observation,
    parse_count,
    parse_uptime,
    save_observation,
)
from backend.ingest.persist import BatchResult, persist, write_batch
from backend.ingest.plan import quarantine_plan
from backend.ingest.registry import Registry
from backend.ingest.stats import IngestStats
from backend.mqtt_client import connect_in_background, make_client
from backend.street_clock import StreetClock
from contracts.topics import ENVELOPE_CHANNELS, Channel, shared, subscription

log = logging.getLogger(__name__)

INGEST_CHANNELS = sorted(ENVELOPE_CHANNELS | {Channel.STATE})


class Ingest:
    """Owns the backend's ingest session. Callbacks never raise; the writer thread commits
    batches and only then acknowledges them, so a crash means redelivery, never loss."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        on_batch: Callable[[BatchResult], None] | None = None,
        alarms: AlarmEngine | None = None,
        clock: StreetClock | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.alarms = alarms
        self.clock = clock
        self.registry = Registry(
            engine,
            reject_retained=settings.mqtt_protocol == "5",
            max_clock_skew_s=settings.max_clock_skew_s or None,
            clock_skew_flag_s=settings.clock_skew_flag_s or None,
        )
        self.on_batch = on_batch
        self.queue: queue.Queue[Incoming] = queue.Queue(maxsize=settings.ingest_queue_max)
        self.stats = IngestStats()
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._committer = Committer(
            self._write, self._quarantine, self._committed, self.stats, self._stop
        )
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self.client = make_client(settings, settings.ingest_id(), persistent=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.message_callback_add(SYS_DROPPED, self._on_dropped)
        self.client.message_callback_add(SYS_UPTIME, self._on_uptime)
        # Which broker the kept drop baseline belongs to.
        self.broker = f"{settings.mqtt_host}:{settings.mqtt_port}"
        self._baseline_failing = False
        # How a retained copy refused on its channel is cleared at the broker (an empty retained
        # message on its topic), through this session: the ACL lets user `backend` write there.
        self.clear_retained: Callable[[str], None] = self._clear_retained

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self.stats.drops.load(load_observation(self.engine, self.broker))
        except Exception:
            # No baseline: the first counter seen counts as drops (loud rather than silent).
            log.exception("could not read the broker drop baseline")
        self._writer.start()
        connect_in_background(self.client, self.settings, persistent=True)

    def stop(self) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()
        self._writer.join(timeout=10)
        self._save_drop_baseline()  # what the next backend judges the broker's counter against

    def lag_seconds(self) -> float:
        """Age of the oldest message received but not yet committed."""
        with self.queue.mutex:
            oldest = self.queue.queue[0] if self.queue.queue else None
        if oldest is None:
            return 0.0
        age: float = (datetime.now(UTC) - oldest.received_at).total_seconds()
        return max(0.0, age)

    # -- paho callbacks (network thread): must never raise ---------------------------------
    def _on_connect(
        self,
        client: mqtt.Client,
        _u: Any,
        _f: mqtt.ConnectFlags,
        reason: ReasonCode,
        _p: Properties | None,
    ) -> None:
        try:
            if reason.is_failure:
                log.error("broker refused ingest connection: %s", reason)
                return
            self.connected.set()
            subs: list[tuple[str, Any]] = []
            for ch in INGEST_CHANNELS:
                topic = subscription(ch)
                if self.settings.share_group:
                    topic = shared(self.settings.share_group, topic)
                if self.settings.mqtt_protocol == "5":
                    # retainHandling=1: retained state only when the subscription is new.
                    # retainAsPublished: live messages keep their publisher's retain flag, so a
                    # retained event is seen as such (and refused) even when we are connected.
                    # MQTT 3.1.1 has neither: there the flag shows only on subscribe-time
                    # delivery (see classify.Rules.reject_retained).
                    opts = SubscribeOptions(qos=1, retainHandling=1, retainAsPublished=True)
                    subs.append((topic, opts))
                else:
                    subs.append((topic, 1))
            if self.settings.mqtt_protocol == "5":
                # Mosquitto counts messages it dropped (full queues): loss must never be silent.
                # Both retained: they arrive right after this SUBSCRIBE, the uptime to judge the
                # counter against (drops.py).
                self.stats.drops.connected()
                subs.append((SYS_UPTIME, SubscribeOptions(qos=0)))
                subs.append((SYS_DROPPED, SubscribeOptions(qos=0)))
            client.subscribe(subs)
            log.info("ingest connected; subscribed to %d channels", len(subs))
        except Exception:
            log.exception("ingest on_connect failed")

    def _on_disconnect(
        self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        self.connected.clear()
        log.warning("ingest disconnected: %s", reason)

    def _on_dropped(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.stats.drops.on_dropped(parse_count(bytes(msg.payload)), datetime.now(UTC))
        except (ValueError, IndexError, UnicodeDecodeError):
            log.warning("unreadable %s", SYS_DROPPED)
        except Exception:
            log.exception("%s not followed", SYS_DROPPED)

    def _on_uptime(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.stats.drops.on_uptime(parse_uptime(bytes(msg.payload)), datetime.now(UTC))
        except (ValueError, IndexError, UnicodeDecodeError):
            log.warning("unreadable %s", SYS_UPTIME)
        except Exception:
            log.exception("%s not followed", SYS_UPTIME)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            item = Incoming(
                topic=msg.topic,
                payload=bytes(msg.payload),
                received_at=datetime.now(UTC),
                retained=bool(msg.retain),
                mid=msg.mid,
                qos=msg.qos,
                # The mapping in force on arrival: street time at receipt is read from it.
                clock=self.clock.state() if self.clock is not None else None,
            )
            self.stats.received += 1
            # Blocking here is the backpressure: paho stops reading, the broker keeps the rest.
            while not self._stop.is_set():
                try:
                    self.queue.put(item, timeout=0.5)
                    return
                except queue.Full:
                    continue
        except Exception:
            log.exception("ingest on_message failed; message left unacknowledged")

    # -- writer thread ---------------------------------------------------------------------
    def _next_batch(self) -> list[Incoming]:
        try:
            first = self.queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        # No waiting for a batch to fill: take what is there. Under load the queue fills while
        # the previous commit runs, so batches grow by themselves; when idle, latency stays low.
        while len(batch) < self.settings.ingest_batch_max:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            batch = self._next_batch()
            if batch:
                self._committer.commit(batch)
            self._save_drop_baseline()

    def _save_drop_baseline(self) -> None:
        seen = self.stats.drops.unsaved()
        if seen is None:
            return
        try:
            save_observation(self.engine, self.broker, seen)
            self._baseline_failing = False
        except Exception:
            # Said once per outage: the writer loop retries every pass.
            if not self._baseline_failing:
                log.warning("broker drop baseline not saved; retrying", exc_info=True)
            self._baseline_failing = True
            self.stats.drops.unsave()

    # The Committer calls these three: one pass of the pipeline (classify, plan, persist), a
    # message the database refused kept as a dead letter, and what follows a commit.
    def _write(self, batch: list[Incoming]) -> BatchResult:
        return write_batch(self.engine, self.registry, batch, self.alarms)

    def _quarantine(self, item: Incoming) -> BatchResult:
        return persist(self.engine, quarantine_plan(item, STORAGE_ERROR))

    def _committed(self, batch: list[Incoming], result: BatchResult) -> None:
        # Acknowledged only now: until the commit the broker keeps them for redelivery.
        self._ack(batch)
        # Cleared only after the refusal is committed: the dead letter is the record of it.
        for topic in result.clear_retained:
            try:
                self.clear_retained(topic)
                self.stats.retained_clears_sent += 1
            except Exception:
                log.warning("retained copy on %s not cleared", topic, exc_info=True)
        self._account(result)

    def _clear_retained(self, topic: str) -> None:
        """An empty retained message clears the broker's copy. Not waited for: the writer thread
        must not stall on the broker. Should it be lost (the session drops first), the copy stays
        at the broker, already dead-lettered here; a new ingest session refuses it again."""
        info = self.client.publish(topic, b"", qos=1, retain=True)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(mqtt.error_string(info.rc))

    def _ack(self, batch: list[Incoming]) -> None:
        for item in batch:
            if item.qos > 0:
                self.client.ack(item.mid, item.qos)

    def _account(self, result: BatchResult) -> None:
        s = self.stats
        s.batches += 1
        s.stored += result.stored
        s.duplicates += result.duplicates
        s.dead_lettered += result.dead_lettered
        s.retained_discarded += result.reasons.get("retained", 0)
        s.retained_clears_ignored += result.clears_ignored
        for reason, n in result.reasons.items():
            s.reasons[reason] = s.reasons.get(reason, 0) + n
        s.last_commit_at = datetime.now(UTC)
        if self.on_batch:
            try:
                self.on_batch(result)
            except Exception:
                log.exception("on_batch hook failed")
