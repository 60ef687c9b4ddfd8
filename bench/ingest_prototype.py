"""A single-threaded ingest, for comparison only (NOT product code): the product's own
`write_batch` (validation, insert-or-ignore, stats, twins, alarms) and ack-after-commit, but the
paho client is driven by the same thread that writes, so no message or ack crosses threads.

    python -m bench.ingest_prototype PORT CREDENTIALS_DIR DATABASE_URL FLEET_FILE CLIENT_ID COUNT
"""

from __future__ import annotations

import json
import select
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from adapters.fleet import load_fleet
from backend.alarms import AlarmEngine
from backend.config import get_settings
from backend.db import init_db, make_engine, provision
from backend.ingest import INGEST_CHANNELS, Incoming, Registry, write_batch
from backend.mqtt_client import connect_kwargs, make_client
from contracts.topics import subscription


def main() -> None:
    port, creds_dir, url, fleet_file, client_id, count = sys.argv[1:7]
    want = int(count)
    settings = get_settings(
        mqtt_port=int(port),
        credentials_dir=Path(creds_dir),
        database_url=url,
        ingest_client_id=client_id,
    )
    engine = make_engine(url)
    init_db(engine)
    provision(engine, load_fleet(fleet_file))
    registry = Registry(engine, max_clock_skew_s=settings.max_clock_skew_s or None)
    alarms = AlarmEngine()
    client = make_client(settings, client_id, persistent=True)
    pending: list[Incoming] = []

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        pending.append(
            Incoming(
                msg.topic, bytes(msg.payload), datetime.now(UTC), bool(msg.retain), msg.mid, msg.qos
            )
        )

    def on_connect(c: mqtt.Client, *_a: Any) -> None:
        c.subscribe([(subscription(ch), 1) for ch in INGEST_CHANNELS])

    client.on_message = on_message
    client.on_connect = on_connect
    # Queue outgoing packets (the acks) instead of one send() per ack; flushed once per batch.
    client.on_socket_register_write = lambda *_a: None
    subscribed: list[bool] = []
    client.on_subscribe = lambda *_a: subscribed.append(True)
    client.connect("127.0.0.1", int(port), 30, **connect_kwargs(settings, persistent=True))
    if want == 0:  # only create the persistent session and its subscriptions
        while not subscribed:
            client.loop(0.1)
        client.disconnect()
        return
    sock = client.socket()
    cpu0 = time.process_time()
    stored, first, last, batches = 0, 0.0, 0.0, 0
    deadline = time.monotonic() + 600
    while stored < want and time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.05)
        # paho reads one packet per loop_read(): read while the socket has data, up to a batch.
        while readable and len(pending) < settings.ingest_batch_max:
            client.loop_read()
            readable, _, _ = select.select([sock], [], [], 0)
        if pending:
            batch, pending[:] = (
                pending[: settings.ingest_batch_max],
                pending[settings.ingest_batch_max :],
            )
            if not first:
                first = time.time()
            result = write_batch(engine, registry, batch, alarms)
            for item in batch:
                client.ack(item.mid, item.qos)
            stored += result.stored + result.duplicates + result.dead_lettered
            batches += 1
            last = time.time()
        client.loop_write()
        client.loop_misc()
    client.disconnect()
    print(
        json.dumps(
            {
                "count": stored,
                "first": first,
                "last": last,
                "batches": batches,
                "cpu_s": time.process_time() - cpu0,
            }
        )
    )


if __name__ == "__main__":
    main()
