"""Nothing lost: faults in the middle of a stream. The oracle is the set of event ids the devices
sent against the set stored, each exactly once; the processes stay up, health reports the
degraded state while it lasts, and ingest resumes by itself."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from adapters.credentials import Credentials
from adapters.fleet import load_fleet
from contracts.kinds.gate import EntryGranted
from contracts.topics import Channel
from devices.behaviour import Emission
from devices.clock import SimClock
from devices.kinds.gate import GateBehaviour
from devices.loop import MqttLoop
from devices.population import Population
from devices.runner import device_rng
from devices.session import BrokerAddress, DeviceSession
from devices.stats import FleetStats
from stack.broker import BrokerProcess
from stack.ports import free_port
from stack.processes import BackendProcess, PostgresServer, wait_until
from tests.helpers import DeviceClient, own_backend
from tests.proxy import TcpProxy

pytestmark = pytest.mark.integration

N = 1500


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Faults of the broker and network do not depend on the database: SQLite here; the
    database's own outages are tested on both below."""
    return f"sqlite:///{tmp_path / 'lijia.db'}"


class Stream:
    """A device publishing N events in a background thread, paced so faults land mid-stream."""

    def __init__(
        self,
        port: int,
        creds: Credentials,
        device: str = "gate-north",
        keepalive: int = 60,
        pace_s: float = 0.002,
    ) -> None:
        self.dev = DeviceClient(port, device, creds.devices[device], keepalive=keepalive)
        self.sent: list[str] = []
        self.done = threading.Event()
        self.running = threading.Event()
        self.running.set()
        self.paused = threading.Event()
        self.last: mqtt.MQTTMessageInfo | None = None
        self.pace_s = pace_s
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        for _ in range(N):
            if not self.running.is_set():
                self.paused.set()
                self.running.wait()
            env = self.dev.envelope()
            # Publish without waiting for the ack: paho keeps unacknowledged QoS 1 messages and
            # sends them again after a reconnect, which is what a real device does.
            self.last = self.dev.client.publish(
                f"lijia/gate/{self.dev.device_id}/events",
                env.model_dump_json(exclude_none=True).encode(),
                qos=1,
            )
            self.sent.append(env.event_id)
            time.sleep(self.pace_s)
        self.done.set()

    def pause(self) -> None:
        """Stop between two publishes, once everything sent so far is acknowledged."""
        self.running.clear()
        assert self.paused.wait(30)
        self.paused.clear()
        wait_until(lambda: self.last is None or self.last.is_published(), timeout=30)

    def resume(self) -> None:
        self.running.set()

    def wait_sent(self, count: int) -> None:
        wait_until(lambda: len(self.sent) >= count, timeout=60)

    def finish(self, backend: BackendProcess, timeout: float = 120) -> None:
        assert self.done.wait(timeout), "the device could not publish everything"
        wait_until(lambda: len(backend.event_ids(device_id=self.dev.device_id)) >= N, timeout)
        self.dev.close()
        ids = backend.event_ids(device_id=self.dev.device_id)
        assert len(ids) == len(set(ids)), "an event was stored twice"
        assert set(ids) == set(self.sent), f"lost {len(set(self.sent) - set(ids))} events"


class SessionStream:
    """The simulator's own device session (devices/session.py, with its outbox) publishing N gate
    events, its MQTT loop driven by a background thread the way the simulator drives it."""

    def __init__(
        self, port: int, creds: Credentials, device: str = "gate-north", pace_s: float = 0.002
    ) -> None:
        spec = next(d for d in load_fleet().devices if d.id == device)
        behaviour = GateBehaviour(spec, device_rng(1, spec.id), Population(10, 1))
        self.loop = MqttLoop()
        self.session = DeviceSession(
            behaviour,
            creds.devices[device],
            self.loop,
            SimClock(datetime.now(UTC)),
            BrokerAddress("127.0.0.1", port),
            FleetStats(),
        )
        self.device_id = device
        self.pace_s = pace_s
        self.sent: list[str] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.session.online, timeout=10)

    def _run(self) -> None:
        loop, session = self.loop, self.session
        session.connect()
        loop.run(until=lambda: session.online)
        granted = Emission(Channel.EVENTS, "entry-granted", EntryGranted(method="card"))
        for _ in range(N):
            if loop.stopping:
                return
            self.sent.append(session.emit(granted, datetime.now(UTC)).event_id)
            due = time.monotonic() + self.pace_s
            while (left := due - time.monotonic()) > 0:
                loop.run_once(left)
        self.done.set()
        loop.run()

    def wait_sent(self, count: int) -> None:
        wait_until(lambda: len(self.sent) >= count, timeout=60)

    def finish(self, backend: BackendProcess, timeout: float = 120) -> None:
        assert self.done.wait(timeout), "the device could not publish everything"
        with contextlib.suppress(AssertionError):  # the oracle below says what is missing
            wait_until(lambda: len(backend.event_ids(device_id=self.device_id)) >= N, timeout)
        ids = backend.event_ids(device_id=self.device_id)
        assert len(ids) == len(set(ids)), "an event was stored twice"
        assert set(ids) == set(self.sent), f"lost {len(set(self.sent) - set(ids))} events"

    def close(self) -> None:
        """A clean shutdown of the session, then the loop stops."""
        self.loop.post(self.session.shutdown)
        try:
            wait_until(lambda: not self.loop.selector.get_map(), timeout=15)
        finally:
            self.loop.stop()
            self.thread.join(15)


def mid_stream(stream: Stream) -> None:
    stream.wait_sent(N // 3)


def test_broker_restarted_gracefully_mid_stream(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    stream = Stream(broker.port, creds)
    mid_stream(stream)
    broker.restart()
    stream.finish(backend)
    assert backend.proc is not None and backend.proc.poll() is None


@pytest.mark.parametrize("backend_meanwhile", ["up", "away"])
def test_broker_sigkilled_mid_stream(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials, backend_meanwhile: str
) -> None:
    """Killed while the device is publishing. Mosquitto acknowledges a publish before it saves,
    so a SIGKILL can lose messages the device already saw acknowledged; the device's outbox
    (devices/outbox.py) publishes its last acknowledged seconds again after the reconnect, the
    backend keeps one copy of each, and nothing is lost. With the backend away the messages
    acknowledged last exist only in the broker (and grow its saves), the harder case."""
    if backend_meanwhile == "away":
        backend.stop()  # its persistent session stays with the broker, queueing for it
    stream = SessionStream(broker.port, creds)
    try:
        stream.wait_sent(N // 3)
        broker.kill()
        assert not stream.done.is_set(), "the broker must die while the device publishes"
        if backend_meanwhile == "up":
            wait_until(lambda: backend.health()["status"] == "degraded", timeout=30)
        broker.start()
        # The device reconnected and published its acknowledged window again.
        wait_until(lambda: stream.session.outbox.resent > 0, timeout=60)
        if backend_meanwhile == "away":
            backend.start()
        stream.finish(backend)
    finally:
        stream.close()


@pytest.fixture
def fast_keepalive_backend(
    broker: BrokerProcess, creds_dir: Path, database_url: str, tmp_path: Path
) -> Iterator[BackendProcess]:
    env = {"LIJIA_MQTT_KEEPALIVE_S": "2"}
    yield from own_backend(broker, creds_dir, database_url, tmp_path / "b", env)


def test_broker_frozen_longer_than_keepalive(
    broker: BrokerProcess, fast_keepalive_backend: BackendProcess, creds: Credentials
) -> None:
    backend = fast_keepalive_backend
    stream = Stream(broker.port, creds, keepalive=2)
    mid_stream(stream)
    broker.send(signal.SIGSTOP)
    try:
        wait_until(lambda: not backend.health()["broker_connected"], timeout=30)
        assert backend.health()["status"] == "degraded"
    finally:
        broker.send(signal.SIGCONT)
    wait_until(lambda: backend.health()["broker_connected"], timeout=60)
    stream.finish(backend)


def test_backend_away_while_devices_publish(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    backend.stop()  # its persistent session stays with the broker, queueing for it
    stream = Stream(broker.port, creds, pace_s=0)
    assert stream.done.wait(60)
    backend.start()
    stream.finish(backend)


def test_backend_sigkilled_twice_mid_stream(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    stream = Stream(broker.port, creds)
    for share in (N // 4, N // 2):
        stream.wait_sent(share)
        backend.kill()
        backend.start()
    stream.finish(backend)


def test_device_network_drops_and_recovers(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    proxy = TcpProxy(broker.port).start()
    try:
        stream = Stream(proxy.port, creds, keepalive=1, pace_s=0.004)
        mid_stream(stream)
        proxy.mode = "blackhole"  # packets vanish: the device notices only by its keepalive
        wait_until(lambda: not stream.dev.client.is_connected(), timeout=30)
        proxy.mode = "forward"
        stream.wait_sent(2 * N // 3)
        proxy.reset()  # connections cut outright
        proxy.latency_s = 0.05  # and a slow link afterwards
        stream.finish(backend)
    finally:
        proxy.stop()


# -- the database ------------------------------------------------------------------------------
def test_sqlite_locked_for_a_while(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials, database_url: str
) -> None:
    stream = Stream(broker.port, creds, pace_s=0.004)
    mid_stream(stream)
    lock = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=1)
    lock.execute("BEGIN EXCLUSIVE")  # every writer now fails with "database is locked"
    try:
        wait_until(lambda: not backend.health()["database_ok"], timeout=60)
        assert backend.health()["status"] == "degraded"
    finally:
        lock.rollback()
        lock.close()
    wait_until(lambda: backend.health()["database_ok"], timeout=60)
    stream.finish(backend)


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A cluster of its own: this test stops it."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="lijia-pg-stop-"))
    base.chmod(0o755)
    server = PostgresServer(base / "data", port=free_port()).start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_backend(
    broker: BrokerProcess, creds_dir: Path, own_postgres: PostgresServer, tmp_path: Path
) -> Iterator[BackendProcess]:
    """A backend on a database of `own_postgres`, which the test may stop or alter."""
    url = own_postgres.create_database("lijia_fault")
    yield from own_backend(broker, creds_dir, url, tmp_path / "pgb", {})


def test_postgres_stopped_for_a_while(
    broker: BrokerProcess,
    creds: Credentials,
    own_postgres: PostgresServer,
    pg_backend: BackendProcess,
) -> None:
    backend = pg_backend
    stream = Stream(broker.port, creds, pace_s=0.004)
    mid_stream(stream)
    own_postgres.stop()
    wait_until(lambda: not backend.health()["database_ok"], timeout=60)
    assert backend.health()["status"] == "degraded"
    own_postgres.restart()
    wait_until(lambda: backend.health()["database_ok"], timeout=60)
    stream.finish(backend)


def test_slow_database_under_a_burst(
    broker: BrokerProcess,
    creds: Credentials,
    own_postgres: PostgresServer,
    pg_backend: BackendProcess,
) -> None:
    backend = pg_backend
    # Every stored row now costs 2 ms inside the database.
    own_postgres.sql(
        "lijia_fault",
        """
        CREATE FUNCTION slow() RETURNS trigger AS $$
        BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END $$ LANGUAGE plpgsql;
        CREATE TRIGGER slow BEFORE INSERT ON event FOR EACH ROW EXECUTE FUNCTION slow();
    """,
    )
    stream = Stream(broker.port, creds, pace_s=0)  # as fast as the device can
    seen_lag: list[float] = []

    def sample() -> bool:
        seen_lag.append(backend.health()["ingest_lag_s"])
        return stream.done.is_set()

    wait_until(sample, timeout=60)
    stream.finish(backend)
    assert max(seen_lag) > 0  # a backlog formed and was worked off


def test_a_row_the_database_refuses_is_isolated_not_retried_forever(
    broker: BrokerProcess,
    creds: Credentials,
    own_postgres: PostgresServer,
    pg_backend: BackendProcess,
) -> None:
    backend = pg_backend
    own_postgres.sql(
        "lijia_fault",
        """
        CREATE FUNCTION refuse() RETURNS trigger AS $$
        BEGIN IF NEW.event_id = 'poison' THEN RAISE EXCEPTION 'refused'; END IF;
        RETURN NEW; END $$ LANGUAGE plpgsql;
        CREATE TRIGGER refuse BEFORE INSERT ON event FOR EACH ROW EXECUTE FUNCTION refuse();
    """,
    )
    dev = DeviceClient(broker.port, "gate-north", creds.devices["gate-north"])
    good = [dev.envelope() for _ in range(20)]
    poison = dev.envelope().model_copy(update={"event_id": "poison"})
    for env in [*good[:10], poison, *good[10:]]:
        dev.send(env)
    dev.close()
    wait_until(lambda: {e.event_id for e in good} <= set(backend.event_ids()), timeout=60)
    assert "poison" not in backend.event_ids()
    reasons = wait_until(lambda: backend.health()["dead_letter_reasons"])
    assert reasons == {"storage-error": 1}
