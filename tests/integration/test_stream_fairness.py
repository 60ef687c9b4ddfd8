"""The live stream is fair (issue 14, deliverable 4): 200 stalled `/stream` clients do not starve
2 fast readers of a 5,000-event burst, the backend's memory stays bounded, and a stalled client is
told what it missed (`resync`) or disconnected."""

from __future__ import annotations

import json
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.credentials import Credentials
from contracts.fleet import Fleet
from contracts.topics import Channel, Topic
from contracts.validation import dumps
from stack.broker import BrokerProcess
from stack.processes import READ_KEY, BackendProcess, wait_until
from tests.helpers import DeviceClient, own_backend

pytestmark = pytest.mark.integration

STALLED = 200
FAST = 2
BURST = 5000
# A stalled client's receive buffer (the kernel doubles it): small, so it really stalls.
RCVBUF = 4096
# The backend's resident memory may grow by at most this much between "every client connected"
# and the end of the burst: the stream's shared buffer (LIJIA_STREAM_BUFFER_BYTES, 4 MiB here) plus
# ≤ 128 KiB of unsent bytes per stalled client (200 × 128 KiB = 25 MiB), plus the ingest of the
# burst itself; a per-client copy of the backlog would be 200 × 2 MB.
RSS_GROWTH_MAX_MB = 48


class SSEClient:
    """A raw `/stream` connection: chunked body decoded, SSE frames parsed as they arrive."""

    def __init__(self, port: int, rcvbuf: int | None = None, extra: str = "") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(
            f"GET /stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {READ_KEY}\r\n"
            f"Accept: text/event-stream\r\n{extra}\r\n".encode()
        )
        self.raw = bytearray()
        self.body = bytearray()
        self.status: int | None = None
        self.closed = False
        self.event_ids: set[str] = set()
        self.resyncs: list[dict[str, Any]] = []

    def read_some(self) -> None:
        try:
            data = self.sock.recv(1 << 16)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        except BlockingIOError:
            return
        if not data:
            self.closed = True
            return
        self.raw += data
        self._parse()

    def _parse(self) -> None:
        if self.status is None:
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status = int(self.raw[: self.raw.find(b"\r\n")].split()[1])
            del self.raw[: end + 4]
        while True:  # chunked transfer coding
            eol = self.raw.find(b"\r\n")
            if eol < 0:
                break
            size = int(self.raw[:eol].split(b";")[0], 16)
            if len(self.raw) < eol + 2 + size + 2:
                break
            self.body += self.raw[eol + 2 : eol + 2 + size]
            del self.raw[: eol + 2 + size + 2]
        while (end := self.body.find(b"\n\n")) >= 0:
            frame = bytes(self.body[:end]).decode()
            del self.body[: end + 2]
            fields = dict(
                line.split(": ", 1) for line in frame.split("\n") if not line.startswith(":")
            )
            if fields.get("event") == "event":
                self.event_ids.add(json.loads(fields["data"])["event_id"])
            elif fields.get("event") == "resync":
                self.resyncs.append(json.loads(fields["data"]))

    def close(self) -> None:
        self.sock.close()


def live_clients(backend: BackendProcess) -> float:
    for line in httpx.get(backend.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("lijia_live_clients "):
            return float(line.split()[1])
    raise AssertionError("lijia_live_clients missing from /metrics")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class Reader(threading.Thread):
    """A fast reader: reads its stream as fast as it comes until told to stop."""

    def __init__(self, client: SSEClient) -> None:
        super().__init__(daemon=True)
        self.client, self.stop = client, threading.Event()

    def run(self) -> None:
        self.client.sock.settimeout(0.2)
        while not self.stop.is_set() and not self.client.closed:
            try:
                self.client.read_some()
            except TimeoutError:
                continue


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, rss_mb(pid), threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, rss_mb(self.pid))


@pytest.fixture
def stream_backend(
    broker: BrokerProcess, creds_dir: Path, tmp_path: Path
) -> Iterator[BackendProcess]:
    db = f"sqlite:///{tmp_path / 'stream.db'}"
    # A buffer of four ingest batches (1,000 events each), not the default two: a fast reader on
    # a loaded CI machine must not be pushed off the end by the pace of commits alone. It is
    # still smaller than the burst, so the stalled clients miss frames.
    env = {"LIJIA_STREAM_BUFFER_FRAMES": "4096", "LIJIA_STREAM_BUFFER_BYTES": str(4 * 1024 * 1024)}
    yield from own_backend(broker, creds_dir, db, tmp_path / "backend", env)


def burst(broker: BrokerProcess, creds: Credentials, fleet: Fleet, count: int) -> set[str]:
    """`count` events published as fast as the devices can (5 gates, QoS 1, pipelined)."""
    gates = [d.id for d in fleet.devices if d.kind == "gate"][:5]
    devices = [DeviceClient(broker.port, g, creds.devices[g]) for g in gates]
    sent: set[str] = set()
    infos = []
    for i in range(count):
        dev = devices[i % len(devices)]
        env = dev.envelope()
        sent.add(env.event_id)
        topic = str(Topic(dev.kind, dev.device_id, Channel.EVENTS))
        infos.append(dev.client.publish(topic, dumps(env), qos=1))
    for info in infos:
        info.wait_for_publish(30)
    for dev in devices:
        dev.close()
    return sent


def test_stalled_clients_do_not_starve_fast_readers(
    stream_backend: BackendProcess, broker: BrokerProcess, creds: Credentials, fleet: Fleet
) -> None:
    backend = stream_backend
    assert backend.proc is not None
    started = time.monotonic()
    stalled = [SSEClient(backend.port, RCVBUF) for _ in range(STALLED)]
    fast = [Reader(SSEClient(backend.port)) for _ in range(FAST)]
    for reader in fast:
        reader.start()
    sampler = RssSampler(backend.proc.pid)
    try:
        wait_until(lambda: live_clients(backend) == STALLED + FAST, timeout=60)
        baseline = sampler.peak = rss_mb(backend.proc.pid)
        sampler.start()
        sent = burst(broker, creds, fleet, BURST)

        # Every fast reader receives every event frame of the burst.
        def all_received() -> bool:
            return all(sent <= r.client.event_ids for r in fast)

        try:
            wait_until(all_received, timeout=120)
        except AssertionError:
            got = [len(sent & r.client.event_ids) for r in fast]
            raise AssertionError(f"fast readers got {got} of {BURST} events") from None
        sampler.stop.set()
        sampler.join()
        assert all(not r.client.resyncs for r in fast)
        growth = sampler.peak - baseline
        print(f"RSS {baseline:.0f} MB -> peak {sampler.peak:.0f} MB (+{growth:.0f} MB)")
        assert growth < RSS_GROWTH_MAX_MB

        # The stalled clients read at last: each is first told how many frames it missed (after
        # what was already in flight), or was disconnected.
        sel = selectors.DefaultSelector()
        for client in stalled:
            client.sock.setblocking(False)
            sel.register(client.sock, selectors.EVENT_READ, client)

        def settled() -> bool:
            for key, _ in sel.select(timeout=0.1):
                client: SSEClient = key.data
                client.read_some()
                if client.closed or client.resyncs:
                    sel.unregister(client.sock)
            return not sel.get_map()

        wait_until(settled, timeout=120, interval=0)
        told = [c for c in stalled if c.resyncs]
        assert all(c.status in (None, 200) for c in stalled)
        assert all(c.resyncs[0]["missed"] > 0 for c in told)
        assert all(c.closed for c in stalled if not c.resyncs)
        print(
            f"{len(told)} stalled clients resynced (missed "
            f"{min((c.resyncs[0]['missed'] for c in told), default=0)}.."
            f"{max((c.resyncs[0]['missed'] for c in told), default=0)}), "
            f"{STALLED - len(told)} disconnected; {time.monotonic() - started:.1f} s"
        )
    finally:
        sampler.stop.set()
        for reader in fast:
            reader.stop.set()
            reader.join()
            reader.client.close()
        for client in stalled:
            client.close()


@pytest.fixture
def strict_backend(
    broker: BrokerProcess, creds_dir: Path, tmp_path: Path
) -> Iterator[BackendProcess]:
    """A backend that allows 3 subscribers and disconnects one that stalls for 1 s."""
    db = f"sqlite:///{tmp_path / 'strict.db'}"
    env = {"LIJIA_STREAM_MAX_SUBSCRIBERS": "3", "LIJIA_STREAM_STALL_TIMEOUT_S": "1"}
    yield from own_backend(broker, creds_dir, db, tmp_path / "backend", env)


def metric(backend: BackendProcess, name: str) -> float:
    for line in httpx.get(backend.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} missing from /metrics")


def test_subscribers_are_bounded_and_a_stalled_one_is_disconnected(
    strict_backend: BackendProcess, broker: BrokerProcess, creds: Credentials, fleet: Fleet
) -> None:
    backend = strict_backend
    # One claims to come through a proxy (uvicorn then rewrites the client's address).
    forwarded = "X-Forwarded-For: 203.0.113.7\r\n"
    stalled = [SSEClient(backend.port, RCVBUF, extra) for extra in ("", "", forwarded)]
    try:
        wait_until(lambda: live_clients(backend) == 3)
        # One more is refused: nothing an outsider opens grows the backend without bound.
        with httpx.stream(
            "GET", backend.url + "/stream", headers={"X-API-Key": READ_KEY}, timeout=10
        ) as resp:
            assert resp.status_code == 503 and "Retry-After" in resp.headers
        assert metric(backend, "lijia_live_refused_total") == 1
        # More than their sockets hold: their writes block, and after the stall timeout they are
        # disconnected, their slots and buffers freed.
        burst(broker, creds, fleet, 2000)
        wait_until(lambda: live_clients(backend) == 0, timeout=60)
        assert metric(backend, "lijia_live_stalled_total") == 3
        for client in stalled:  # what was in flight, then the end
            client.sock.settimeout(10)
            while not client.closed:
                client.read_some()
            assert client.status == 200 and not client.resyncs
        with httpx.stream(
            "GET", backend.url + "/stream", headers={"X-API-Key": READ_KEY}, timeout=10
        ) as resp:
            assert resp.status_code == 200
    finally:
        for client in stalled:
            client.close()
