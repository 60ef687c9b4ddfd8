"""Load driver for the live benchmark: the fleet's own device sessions (devices/session.py: one
paho client and one credential per device, all on one MqttLoop, as FleetRunner runs them), fed
with the fleet's own behaviours' emissions, but paced at a fixed total rate instead of the
simulated clock. Envelope `ts` is the wall-clock instant of publishing.

    python -m bench.live_driver PORT CREDS_DIR FLEET_FILE RATE SECONDS PREFIX IDS_OUT
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.credentials import load as load_credentials
from adapters.fleet import load_fleet
from adapters.limits import raise_fd_limit
from bench.common import emission_pool
from contracts.envelope import Envelope
from contracts.validation import dumps
from devices.clock import SimClock
from devices.loop import MqttLoop
from devices.session import BrokerAddress, DeviceSession
from devices.stats import FleetStats
from devices.street import Street


def say(**kw: Any) -> None:
    print(json.dumps(kw), flush=True)


class PacedSession(DeviceSession):
    """A real device session whose publishing is paced by the benchmark."""

    def send(
        self,
        channel: Any,
        type_: str,
        data: dict[str, Any],
        event_id: str,
        correlation_id: str | None,
    ) -> None:
        env = Envelope(
            event_id=event_id,
            device_id=self.device_id,
            kind=self.kind,
            type=type_,
            seq=self.seq,
            boot=self.boot,
            ts=datetime.now(UTC),
            correlation_id=correlation_id,
            data=data,
        )
        self.seq += 1
        self._publish(channel, dumps(env))


def main() -> None:
    port, creds_dir, fleet_file, rate_s, seconds_s, prefix, ids_out = sys.argv[1:8]
    rate, seconds = float(rate_s), float(seconds_s)
    fleet = load_fleet(fleet_file)
    creds = load_credentials(Path(creds_dir))
    # The pool is cycled: about 10 s of traffic, in the street's own mix.
    pool_n = int(min(max(rate * 10, 20_000), 60_000))
    pool = [
        (
            i,
            em.channel,
            em.type,
            em.data.model_dump(mode="json", exclude_none=True),
            em.correlation_id,
        )
        for i, _due, em in emission_pool(fleet, pool_n)
    ]
    loop, stats = MqttLoop(), FleetStats()
    clock = SimClock(datetime.now(UTC))
    raise_fd_limit(len(fleet.devices) + 256)
    street = Street(fleet)
    sessions = [
        PacedSession(
            behaviour,
            creds.devices[spec.id],
            loop,
            clock,
            BrokerAddress("127.0.0.1", int(port)),
            stats,
        )
        for spec, behaviour in zip(street.specs, street.behaviours, strict=True)
    ]
    t0 = time.monotonic()
    pending = list(sessions)
    deadline = time.monotonic() + 120
    while (pending or stats.connected < len(sessions)) and time.monotonic() < deadline:
        # In waves, as FleetRunner connects (no SYN flood at the broker).
        for s in pending[:250]:
            s.connect()
        del pending[:250]
        loop.run_once(0.01)
    connect_s = time.monotonic() - t0
    # Let the "online" state messages go out before the measured traffic starts.
    loop.run(until=lambda: stats.backlog <= 0 or time.monotonic() > deadline)
    say(event="connected", devices=stats.connected, of=len(sessions), connect_s=connect_s)
    cpu0 = time.process_time()
    sent_ids: list[str] = []
    start_wall, start = time.time(), time.monotonic()
    say(event="started", t=start_wall)
    k = 0
    end = start + seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = int((now - start) * rate)
        while len(sent_ids) < due:
            i, channel, type_, data, corr = pool[k % len(pool)]
            k += 1
            event_id = f"{prefix}{len(sent_ids):08x}"
            sessions[i].send(channel, type_, data, event_id, corr)
            sent_ids.append(event_id)
        loop.run_once(0.002)
    stop_wall = time.time()
    sent = len(sent_ids)
    say(event="stopped", t=stop_wall, sent=sent, offered_rate=sent / (time.monotonic() - start))
    cpu_busy = time.process_time() - cpu0
    deadline = time.monotonic() + 60
    loop.run(until=lambda: stats.backlog <= 0 or time.monotonic() > deadline)
    Path(ids_out).write_text("\n".join(sent_ids))
    say(
        event="done",
        sent=sent,
        unacked=stats.backlog,
        errors=stats.errors,
        cpu_cores=cpu_busy / max(stop_wall - start_wall, 1e-9),
    )
    for s in sessions:
        s.shutdown()
    loop.run(until=lambda: not loop.selector.get_map() or time.monotonic() > deadline + 10)


if __name__ == "__main__":
    main()
