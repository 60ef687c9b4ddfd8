"""The embedded (amqtt) broker enforces the same identities and rights as our Mosquitto: those of
the generated dynamic-security.json."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from adapters import credentials
from contracts.fleet import Fleet, parse_fleet
from stack.acl import (
    AclError,
    Policy,
    filter_covers,
    load_acl,
    may_publish,
    may_receive,
    may_subscribe,
    parse_acl,
    policy_from_document,
    topic_matches,
)
from stack.broker import generate_credentials
from stack.embedded_broker import PasswordHash, load_broker_file, serve

REPO = Path(__file__).resolve().parents[2]
ACL_FILE = REPO / "broker_config" / "acl"
TIMEOUT = 10.0


# --- stack/acl.py ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("lijia/+/+/events", "lijia/gate/gate-a/events", True),
        ("lijia/+/+/events", "lijia/gate/gate-a/telemetry", False),
        ("lijia/+/+/events", "lijia/gate/gate-a/events/extra", False),
        ("lijia/+/+/events", "lijia/gate/events", False),
        ("lijia/#", "lijia", True),  # `#` includes the parent level (MQTT 3.1.1 §4.7.1.2)
        ("lijia/#", "lijia/gate/gate-a/events", True),
        ("#", "lijia/gate/gate-a/events", True),
        ("#", "$SYS/broker/uptime", False),  # leading wildcards never match `$` topics
        ("+/broker/uptime", "$SYS/broker/uptime", False),
        ("$SYS/#", "$SYS/broker/uptime", True),
        ("lijia/gate/gate-a/events", "lijia/gate/gate-a/events", True),
        ("lijia/gate/gate-a/events", "lijia/gate/gate-b/events", False),
        ("lijia/+/gate-a/events", "lijia//gate-a/events", True),  # `+` matches an empty level
    ],
)
def test_topic_matches(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


@pytest.mark.parametrize(
    ("acl_filter", "sub_filter", "expected"),
    [
        ("lijia/+/+/events", "lijia/+/+/events", True),
        ("lijia/+/+/events", "lijia/gate/+/events", True),
        ("lijia/+/+/events", "lijia/gate/gate-a/events", True),
        ("lijia/gate/+/events", "lijia/+/+/events", False),  # a narrower rule
        ("lijia/+/gate-a/commands", "lijia/+/+/commands", False),
        ("lijia/+/+/events", "lijia/#", False),
        ("lijia/+", "lijia/#", False),  # `#` also covers `lijia` and deeper levels
        ("lijia/#", "lijia/+/+/events", True),
        ("lijia/#", "lijia/#", True),
        ("$SYS/#", "$SYS/broker/#", True),
        ("#", "$SYS/#", False),
    ],
)
def test_filter_covers(acl_filter: str, sub_filter: str, expected: bool) -> None:
    assert filter_covers(acl_filter, sub_filter) is expected


def _project_policy() -> Policy:
    """The rights the generated dynamic-security.json gives two gates and the services."""
    creds = credentials.Credentials("b", {"gate-a": "a", "gate-b": "b"}, "s")
    rules = load_acl(ACL_FILE).service_rules()
    return policy_from_document(
        credentials.broker_document(_fleet("gate-a", "gate-b"), creds, rules)
    )


def test_project_acl_for_devices_and_backend() -> None:
    acl = _project_policy()
    # A device writes only its own topics and reads only its own commands.
    assert may_publish(acl, "gate-a", "lijia/gate/gate-a/events")
    assert may_publish(acl, "gate-a", "lijia/gate/gate-a/state")
    assert not may_publish(acl, "gate-a", "lijia/gate/gate-b/events")
    assert not may_publish(acl, "gate-a", "lijia/gate/gate-a/commands")
    # ... under its own kind only (the ACL file's `lijia/+/%u/...` allowed any kind).
    assert not may_publish(acl, "gate-a", "lijia/light/gate-a/events")
    assert not may_publish(acl, "gate-a", "lijia/light/gate-a/state")
    # Its own commands, on its own kind's topic (a `+` for the kind is no longer covered).
    assert may_subscribe(acl, "gate-a", "lijia/gate/gate-a/commands")
    assert not may_subscribe(acl, "gate-a", "lijia/+/gate-a/commands")
    assert may_receive(acl, "gate-a", "lijia/gate/gate-a/commands")
    assert not may_receive(acl, "gate-a", "lijia/light/gate-a/commands")
    assert not may_subscribe(acl, "gate-a", "lijia/+/+/commands")
    assert not may_receive(acl, "gate-a", "lijia/gate/gate-b/commands")
    assert not may_subscribe(acl, "gate-a", "lijia/+/+/events")
    # The backend reads what devices publish, sends commands, and may inject events; it may
    # write (empty, retained) telemetry, state and command-results to clear what a device left.
    assert may_subscribe(acl, "backend", "lijia/+/+/events")
    assert may_subscribe(acl, "backend", "$share/backend/lijia/+/+/events")
    assert may_receive(acl, "backend", "lijia/gate/gate-a/telemetry")
    assert may_publish(acl, "backend", "lijia/gate/gate-a/commands")
    assert may_publish(acl, "backend", "lijia/gate/gate-a/events")
    # It writes telemetry only to clear a retained copy there (backend/ingest): an empty message.
    assert may_publish(acl, "backend", "lijia/gate/gate-a/telemetry")
    assert not may_publish(acl, "backend", "lijia/sim/clock/sim-1")
    assert may_subscribe(acl, "backend", "$SYS/#")
    assert not may_subscribe(acl, "backend", "#")
    assert not may_publish(acl, "backend", "lijia/sim/acks")
    # Nobody may administer the broker's identities; unknown and anonymous users get nothing.
    for user in ("backend", "simulator", "gate-a"):
        assert not may_publish(acl, user, "$CONTROL/dynamic-security/v1")
        assert not may_subscribe(acl, user, "$CONTROL/#")
    assert not may_publish(acl, None, "lijia/gate/gate-a/events")
    assert not may_publish(acl, "nobody", "lijia/gate/nobody/events")
    assert not may_subscribe(acl, "", "lijia/+/+/commands")


def test_user_names_with_wildcards_get_no_patterns() -> None:
    acl = _project_policy()
    # No substitution exists any more: a user name is only ever looked up, never expanded.
    assert not may_publish(acl, "+", "lijia/gate/gate-a/events")
    assert not may_publish(acl, "#", "lijia/gate/gate-a/events")
    assert not may_publish(acl, "a/b", "lijia/gate/a/b/events")


def test_parse_acl_topic_lines_belong_to_the_preceding_user() -> None:
    acl = parse_acl("user alice\ntopic read a/#\n\n# comment\nuser bob\ntopic b/+\n").policy()
    assert may_receive(acl, "alice", "a/x") and not may_receive(acl, "bob", "a/x")
    assert may_subscribe(acl, "alice", "a/#") and not may_publish(acl, "alice", "a/x")
    # No access word means readwrite, as in Mosquitto.
    assert may_receive(acl, "bob", "b/x") and may_publish(acl, "bob", "b/x")
    assert not may_publish(acl, "carol", "b/x")


@pytest.mark.parametrize(
    "text",
    [
        "topic read a/#\n",  # anonymous rules
        "user x\ntopic deny a/#\n",  # ignoring a deny would grant access
        "user x\ntopic read a/#/b\n",
        "user x\ntopic read\n",
        "pattern read a/%c\n",
        "pattern write d/%u\n",  # device rights are generated per device, not patterns
        "user x\ntopic write d/%u\n",
        "user x\nbogus read a\n",
    ],
)
def test_parse_acl_refuses_what_it_does_not_understand(text: str) -> None:
    with pytest.raises(AclError):
        parse_acl(text)


def test_password_hash_matches_credentials_module(tmp_path: Path) -> None:
    entry = PasswordHash.from_client(credentials.password_fields("s3cret"))
    assert entry.verify("s3cret")
    assert not entry.verify("s3cret ")
    broker_file = tmp_path / "dynamic-security.json"
    good = {"username": "u", **credentials.password_fields("pw")}
    for bad in (
        {"username": "u"},
        {**good, "salt": "c2hvcnQ="},  # not the 12 bytes Mosquitto reads
        {**good, "password": "not base64!"},
        {**good, "iterations": 0},
        {**credentials.password_fields("pw")},  # no user name
    ):
        broker_file.write_text(json.dumps({"clients": [bad]}))
        with pytest.raises(ValueError):
            load_broker_file(broker_file)
    broker_file.write_text(json.dumps({"clients": [good], "groups": [{"groupname": "g"}]}))
    with pytest.raises(ValueError):
        load_broker_file(broker_file)
    broker_file.write_text(json.dumps({"clients": [good]}))
    assert load_broker_file(broker_file).identities["u"].password.verify("pw")


# --- the broker as a process -------------------------------------------------------------------


@dataclass
class RunningBroker:
    port: int
    creds: credentials.Credentials
    log_path: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_listening(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"broker exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"broker not listening on {port}:\n{log_path.read_text()}")


def _fleet(*device_ids: str) -> Fleet:
    return parse_fleet(
        {
            "devices": [
                {
                    "id": device_id,
                    "kind": "gate",
                    "name_en": f"Gate {device_id}",
                    "name_zh": "大门",
                    "position": {"x": 100, "y": 100},
                }
                for device_id in device_ids
            ]
        }
    )


@contextlib.contextmanager
def _broker_process(
    tmp: Path, fleet: Fleet
) -> Iterator[tuple[RunningBroker, subprocess.Popen[bytes]]]:
    creds = generate_credentials(fleet, tmp / "credentials")
    port = _free_port()
    log_path = tmp / "broker.log"
    cmd = [
        sys.executable, "-m", "stack.embedded_broker", "--port", str(port),
        "--credentials", str(credentials.broker_file(tmp / "credentials")),
    ]  # fmt: skip
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _wait_until_listening(proc, port, log_path)
        yield RunningBroker(port, creds, log_path), proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    # A clean SIGTERM shutdown, not a crash.
    assert proc.returncode == 0, log_path.read_text()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBroker]:
    tmp = tmp_path_factory.mktemp("embedded-broker")
    with _broker_process(tmp, _fleet("gate-a", "gate-b")) as (running, _proc):
        yield running


class Client:
    """A paho 2.x client whose callbacks land in thread-safe events and queues."""

    def __init__(
        self,
        embedded: RunningBroker,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        *,
        clean_session: bool = True,
        will_topic: str | None = None,
    ) -> None:
        self.broker = embedded
        self.mqtt = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=clean_session,
        )
        if username is not None:
            self.mqtt.username_pw_set(username, password)
        if will_topic is not None:
            self.mqtt.will_set(will_topic, b"offline", qos=1)
        self._connack = threading.Event()
        self.connect_reason: ReasonCode | None = None
        self._subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.mqtt.on_connect = self._on_connect
        self.mqtt.on_subscribe = self._on_subscribe
        self.mqtt.on_message = self._on_message

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connect_reason = reason_code
        self._connack.set()

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code_list: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        self._subacks.put(reason_code_list)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.put((message.topic, bytes(message.payload)))

    def connect(self) -> bool:
        """True if the broker accepted the CONNECT."""
        try:
            self.mqtt.connect("127.0.0.1", self.broker.port, keepalive=30)
        except OSError:
            return False  # the broker may close the socket before paho reads the CONNACK
        self.mqtt.loop_start()
        if not self._connack.wait(TIMEOUT) or self.connect_reason is None:
            return False
        return not self.connect_reason.is_failure

    def subscribe(self, topic_filter: str) -> bool:
        """True if the broker granted the subscription."""
        self.mqtt.subscribe(topic_filter, qos=1)
        codes = self._subacks.get(timeout=TIMEOUT)
        return not codes[0].is_failure

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.mqtt.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(TIMEOUT)

    def next_message(self) -> tuple[str, bytes]:
        return self.messages.get(timeout=TIMEOUT)

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()


Connect = Callable[..., Client]


@pytest.fixture
def connect(embedded: RunningBroker, clients: list[Client]) -> Connect:
    def _connect(client_id: str, username: str | None, password: str | None, **kw: Any) -> Client:
        client = Client(embedded, client_id, username, password, **kw)
        clients.append(client)
        return client

    return _connect


def _backend(
    connect: Connect, embedded: RunningBroker, client_id: str = "backend-test", **kw: Any
) -> Client:
    backend = connect(client_id, credentials.BACKEND_USER, embedded.creds.backend_password, **kw)
    assert backend.connect()
    return backend


def _device(connect: Connect, embedded: RunningBroker, device_id: str) -> Client:
    device = connect(device_id, device_id, embedded.creds.devices[device_id])
    assert device.connect()
    return device


def test_device_event_reaches_backend(embedded: RunningBroker, connect: Connect) -> None:
    backend = _backend(connect, embedded)
    assert backend.subscribe("lijia/+/+/events")
    device = _device(connect, embedded, "gate-a")
    device.publish("lijia/gate/gate-a/events", b'{"hello": 1}')
    assert backend.next_message() == ("lijia/gate/gate-a/events", b'{"hello": 1}')


def test_backend_command_reaches_only_its_device(embedded: RunningBroker, connect: Connect) -> None:
    gate_a = _device(connect, embedded, "gate-a")
    gate_b = _device(connect, embedded, "gate-b")
    assert gate_a.subscribe("lijia/gate/gate-a/commands")
    assert not gate_a.subscribe("lijia/+/+/commands")  # other devices' commands
    assert not gate_a.subscribe("lijia/+/+/events")  # other devices' events
    assert gate_b.subscribe("lijia/gate/gate-b/commands")
    backend = _backend(connect, embedded)
    backend.publish("lijia/gate/gate-b/commands", b"open")
    backend.publish("lijia/gate/gate-a/commands", b"close")
    assert gate_a.next_message() == ("lijia/gate/gate-a/commands", b"close")
    assert gate_b.next_message() == ("lijia/gate/gate-b/commands", b"open")
    assert gate_a.messages.empty()


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("gate-a", "wrong"),
        ("backend", "wrong"),
        ("gate-a", None),  # user name without password
        (None, None),  # anonymous
        ("nobody", "whatever"),
    ],
)
def test_bad_credentials_are_refused(
    embedded: RunningBroker, connect: Connect, username: str | None, password: str | None
) -> None:
    assert not connect("intruder", username, password).connect()


def test_another_users_password_is_refused(embedded: RunningBroker, connect: Connect) -> None:
    assert not connect("intruder", "backend", embedded.creds.devices["gate-a"]).connect()
    assert not connect("intruder", "gate-b", embedded.creds.devices["gate-a"]).connect()


def test_publishing_on_another_devices_topic_is_not_delivered(
    embedded: RunningBroker, connect: Connect
) -> None:
    backend = _backend(connect, embedded)
    assert backend.subscribe("lijia/+/+/events")
    device = _device(connect, embedded, "gate-a")
    device.publish("lijia/gate/gate-b/events", b"spoofed")
    device.publish("lijia/gate/gate-a/commands", b"self-command")
    device.publish("lijia/gate/gate-a/events", b"genuine")
    # Messages from one connection are delivered in order: had the spoofed one passed, it
    # would have arrived first.
    assert backend.next_message() == ("lijia/gate/gate-a/events", b"genuine")
    assert backend.messages.empty()


def test_a_devices_credentials_work_only_with_its_own_client_id(
    embedded: RunningBroker, connect: Connect
) -> None:
    backend = _backend(connect, embedded, "backend:ingest")
    assert backend.subscribe("lijia/+/+/events")
    gate_b = _device(connect, embedded, "gate-b")
    assert gate_b.subscribe("lijia/gate/gate-b/commands")
    password = embedded.creds.devices["gate-a"]
    # Another device's id, the backend's, the simulator's: all public, none usable.
    for client_id in ("gate-b", "backend:ingest", "simulator:sim-1", "gate-a-2"):
        assert not connect(client_id, "gate-a", password).connect(), client_id
    # Neither session was taken over: both still get what is sent to them.
    _device(connect, embedded, "gate-a").publish("lijia/gate/gate-a/events", b"after")
    assert backend.next_message() == ("lijia/gate/gate-a/events", b"after")
    backend.publish("lijia/gate/gate-b/commands", b"open")
    assert gate_b.next_message() == ("lijia/gate/gate-b/commands", b"open")
    assert backend.mqtt.is_connected() and gate_b.mqtt.is_connected()
    assert "may connect only as its own client id" in embedded.log_path.read_text()


def test_publishing_under_another_kind_is_not_delivered(
    embedded: RunningBroker, connect: Connect
) -> None:
    backend = _backend(connect, embedded)
    assert backend.subscribe("lijia/+/+/events")
    device = _device(connect, embedded, "gate-a")
    device.publish("lijia/light/gate-a/events", b"other kind")
    device.publish("lijia/gate/gate-a/events", b"genuine")
    assert backend.next_message() == ("lijia/gate/gate-a/events", b"genuine")
    assert backend.messages.empty()


def test_retained_publishes_are_kept_only_on_state(
    embedded: RunningBroker, connect: Connect
) -> None:
    device = _device(connect, embedded, "gate-b")
    device.publish("lijia/gate/gate-b/events", b"stale event", retain=True)
    device.publish("lijia/gate/gate-b/telemetry", b"stale telemetry", retain=True)
    device.publish("lijia/gate/gate-b/state", b"online", retain=True)
    later = _backend(connect, embedded, "backend-later")
    # Retained messages are sent in subscription order: a retained event would come first.
    assert later.subscribe("lijia/gate/gate-b/events")
    assert later.subscribe("lijia/gate/gate-b/telemetry")
    assert later.subscribe("lijia/gate/gate-b/state")
    assert later.next_message() == ("lijia/gate/gate-b/state", b"online")
    assert later.messages.empty()
    assert "dropped a retained publish" in embedded.log_path.read_text()


def test_last_will_on_another_devices_topic_is_refused(
    embedded: RunningBroker, connect: Connect
) -> None:
    # The broker publishes a will itself, past the publish check, so it is checked at connect.
    password = embedded.creds.devices["gate-a"]
    spoof = connect("gate-a", "gate-a", password, will_topic="lijia/gate/gate-b/state")
    assert not spoof.connect()
    own = connect("gate-a", "gate-a", password, will_topic="lijia/gate/gate-a/state")
    assert own.connect()


def test_stored_session_cannot_be_taken_over_by_another_user(
    embedded: RunningBroker, connect: Connect
) -> None:
    session_id = "backend-persistent"
    backend = _backend(connect, embedded, session_id, clean_session=False)
    assert backend.subscribe("lijia/+/+/events")
    backend.close()
    # A second, live subscriber shows when the broker has handled the publish (it queues for
    # the offline session in the same pass).
    live = _backend(connect, embedded, "backend-live")
    assert live.subscribe("lijia/+/+/events")
    _device(connect, embedded, "gate-b").publish("lijia/gate/gate-b/events", b"queued")
    assert live.next_message() == ("lijia/gate/gate-b/events", b"queued")

    # Not a device (its credentials work with its own client id only): another service user.
    simulator_password = embedded.creds.simulator_password
    thief = connect(session_id, "simulator", simulator_password, clean_session=False)
    assert not thief.connect()
    assert thief.messages.empty()

    # The rightful owner still gets what was queued for it.
    backend = _backend(connect, embedded, session_id, clean_session=False)
    assert backend.next_message() == ("lijia/gate/gate-b/events", b"queued")


def test_refused_client_cannot_disturb_a_session_with_the_same_client_id(
    embedded: RunningBroker, connect: Connect
) -> None:
    # Plain amqtt deletes the stored session of a clean-session CONNECT before authenticating
    # it: a client without any password could silently unsubscribe the backend.
    backend = _backend(connect, embedded, "backend-victim")
    assert backend.subscribe("lijia/+/+/events")
    assert not connect("backend-victim", "gate-a", "wrong").connect()
    assert not connect("backend-victim", None, None).connect()
    _device(connect, embedded, "gate-a").publish("lijia/gate/gate-a/events", b"still here")
    assert backend.next_message() == ("lijia/gate/gate-a/events", b"still here")
    assert backend.mqtt.is_connected()


def test_sighup_reloads_the_credentials(tmp_path: Path) -> None:
    with _broker_process(tmp_path, _fleet("gate-a")) as (running, proc):
        # A device added to the fleet gets a password; the running broker learns it on SIGHUP.
        running.creds = generate_credentials(_fleet("gate-a", "gate-c"), tmp_path / "credentials")
        password = running.creds.devices["gate-c"]
        assert not Client(running, "gate-c", "gate-c", password).connect()
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT
        while True:
            client = Client(running, "gate-c", "gate-c", password)
            accepted = client.connect()
            client.close()
            if accepted:
                break
            assert time.monotonic() < deadline, running.log_path.read_text()


def test_serve_in_process(tmp_path: Path) -> None:
    creds = generate_credentials(_fleet("gate-a"), tmp_path)
    port = _free_port()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=loop.run_until_complete,
        args=(serve(port, credentials.broker_file(tmp_path), stop=stop),),
    )
    thread.start()
    try:
        running = RunningBroker(port, creds, tmp_path / "no-log")
        deadline = time.monotonic() + TIMEOUT
        while True:
            client = Client(running, "backend-inproc", "backend", creds.backend_password)
            if client.connect():
                client.close()
                break
            client.close()
            assert thread.is_alive() and time.monotonic() < deadline
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(TIMEOUT)
        loop.close()
    assert not thread.is_alive()
