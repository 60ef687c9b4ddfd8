"""What stalled `/stream` clients cost the others: for each N, N clients that never read (a small
receive buffer, so they really stall) and 2 fast readers, then a burst of events published as
devices over MQTT; reported: the share of the burst each fast reader got, how long after the
last publish the readers had it, the backend's CPU and memory, and what the stalled ones were
told when they read at last.

    python -m bench.stream_fanout [--stalled 0,50,200] [--events 5000]

(issue 14, deliverable 4; the test is tests/integration/test_stream_fairness.py)
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from adapters.mqtt import make_client
from bench.common import CpuSampler, Workspace, new_workdir, rss_mb
from contracts.envelope import Envelope, new_id
from contracts.topics import Channel, Topic
from contracts.validation import dumps
from stack.processes import READ_KEY, BackendProcess, wait_until

RCVBUF = 4096


class Stream:
    """A raw `/stream` connection; counts event ids and resyncs (chunked coding decoded)."""

    def __init__(self, port: int, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(
            f"GET /stream HTTP/1.1\r\nHost: x\r\nX-API-Key: {READ_KEY}\r\n\r\n".encode()
        )
        self.raw, self.body, self.head = bytearray(), bytearray(), False
        self.ids: set[str] = set()
        self.missed: list[int] = []
        self.closed = False

    def read(self) -> None:
        try:
            data = self.sock.recv(1 << 16)
        except (BlockingIOError, TimeoutError):
            return
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return
        self.raw += data
        if not self.head and (end := self.raw.find(b"\r\n\r\n")) >= 0:
            del self.raw[: end + 4]
            self.head = True
        while self.head and (eol := self.raw.find(b"\r\n")) >= 0:
            size = int(self.raw[:eol], 16)
            if len(self.raw) < eol + size + 4:
                break
            self.body += self.raw[eol + 2 : eol + 2 + size]
            del self.raw[: eol + size + 4]
        while (end := self.body.find(b"\n\n")) >= 0:
            lines = bytes(self.body[:end]).decode().split("\n")
            del self.body[: end + 2]
            if lines[0] == "event: event":
                self.ids.add(json.loads(lines[1][6:])["event_id"])
            elif lines[0] == "event: resync":
                self.missed.append(json.loads(lines[1][6:])["missed"])


def metric(backend: BackendProcess, name: str) -> float:
    for line in httpx.get(backend.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def publish_burst(port: int, passwords: dict[str, str], gates: list[str], count: int) -> set[str]:
    clients = []
    for gate in gates:  # a device's client id is its id (issue 14)
        client = make_client(gate, gate, passwords[gate], max_inflight=100)
        client.connect("127.0.0.1", port)
        client.loop_start()
        clients.append(client)
    wait_until(lambda: all(c.is_connected() for c in clients), timeout=10)
    sent, infos = set(), []
    for i in range(count):
        gate = gates[i % len(gates)]
        env = Envelope(
            event_id=new_id(),
            device_id=gate,
            kind="gate",
            type="entry-granted",
            seq=i // len(gates),
            ts=datetime.now(UTC),
            data={"method": "card", "duration_ms": 1500},
        )
        sent.add(env.event_id)
        topic = str(Topic("gate", gate, Channel.EVENTS))
        infos.append(clients[i % len(clients)].publish(topic, dumps(env), qos=1))
    for info in infos:
        info.wait_for_publish(30)
    for client in clients:
        client.disconnect()
        client.loop_stop()
    return sent


def run_one(stalled_n: int, events: int) -> dict[str, Any]:
    ws = Workspace.create(f"stream-{stalled_n}", new_workdir(False))
    fleet, fleet_file = ws.fleet()
    creds, creds_dir = ws.credentials(fleet)
    broker = ws.broker(creds_dir)
    backend = ws.backend(broker.port, creds_dir, ws.base / "db.sqlite", fleet_file).start()
    assert backend.proc is not None
    try:
        stalled = [Stream(backend.port, RCVBUF) for _ in range(stalled_n)]
        fast = [Stream(backend.port) for _ in range(2)]
        stop = threading.Event()

        def pump(s: Stream) -> None:
            s.sock.settimeout(0.2)
            while not stop.is_set() and not s.closed:
                s.read()

        threads = [threading.Thread(target=pump, args=(s,), daemon=True) for s in fast]
        for t in threads:
            t.start()
        wait_until(lambda: metric(backend, "lijia_live_clients") == stalled_n + 2, timeout=60)
        rss0 = rss_mb(backend.proc.pid)
        cpu = CpuSampler({"backend": backend.proc.pid})
        gates = [d.id for d in fleet.devices if d.kind == "gate"][:5]
        t0 = time.monotonic()
        sent = publish_burst(broker.port, creds.devices, gates, events)
        published = time.monotonic() - t0
        wait_until(lambda: metric(backend, "lijia_ingest_stored_total") >= events, timeout=300)
        last, done_at = -1, time.monotonic()
        while (now := sum(len(s.ids & sent) for s in fast)) != last:  # until no progress for 2 s
            last, done_at = now, time.monotonic()
            stop.wait(2)
        busy = cpu.cores()["backend"] * (time.monotonic() - cpu.t0)
        rss1 = rss_mb(backend.proc.pid)
        stop.set()
        sel = selectors.DefaultSelector()
        for s in stalled:
            s.sock.setblocking(False)
            sel.register(s.sock, selectors.EVENT_READ, s)
        deadline = time.monotonic() + 60
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(0.2):
                s = key.data
                s.read()
                if s.closed or s.missed:
                    sel.unregister(s.sock)
        missed = [s.missed[0] for s in stalled if s.missed]
        return {
            "stalled": stalled_n,
            "events": events,
            "fast_got_pct": [round(100 * len(s.ids & sent) / events, 1) for s in fast],
            "publish_s": round(published, 2),
            "readers_done_s": round(done_at - t0, 2),
            "backend_cpu_s": round(busy, 2),
            "rss_mb": [round(rss0), round(rss1)],
            "stalled_resynced": len(missed),
            "stalled_missed": [min(missed, default=0), max(missed, default=0)],
            "stalled_disconnected": sum(s.closed and not s.missed for s in stalled),
        }
    finally:
        backend.stop()
        ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--stalled", default="0,50,200")
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    for n in (int(x) for x in args.stalled.split(",")):
        result = run_one(n, args.events)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
