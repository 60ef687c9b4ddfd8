"""5. The API with 1,000,000 events stored: p95 of filtered, cursor-paginated GET /events and of
GET /stats, warm, with an HTTP client in a loop; baseline GET /health (framework + one
`SELECT 1`) in the same loop. The rows are bulk-loaded with SQLAlchemy Core executemany into the
schema that backend.db.init_db creates, with stat_hourly filled from the same rows."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from backend.db import init_db, make_engine, provision
from backend.models import Event, StatHourly, table
from bench import profile
from bench.common import Workspace, emission_pool, log, percentile
from bench.targets import TARGET_P95_MS
from contracts.catalogue import load_builtin_kinds
from contracts.envelope import new_id
from stack.processes import READ_KEY

CHUNK = 10_000


def bulk_load(db: Path, fleet: Any, total: int, days: float = 10.0) -> dict[str, Any]:
    engine = make_engine(f"sqlite:///{db}")
    init_db(engine)
    provision(engine, fleet)
    pool = emission_pool(fleet, min(total, 100_000))
    pool_rows = [
        (
            fleet.devices[i],
            em.channel.value,
            em.type,
            em.data.model_dump(mode="json", exclude_none=True),
            em.correlation_id,
        )
        for i, _due, em in pool
    ]
    kinds = load_builtin_kinds()
    events = table(Event)
    columns = set(events.c.keys())
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=days)
    step = (end - start) / total
    seq: Counter[str] = Counter()
    boots = {d.id: new_id()[:12] for d in fleet.devices}
    stats: Counter[tuple[str, str, datetime, str]] = Counter()
    types: Counter[str] = Counter()
    t0 = time.monotonic()
    with engine.begin() as conn:
        for base in range(0, total, CHUNK):
            rows = []
            for k in range(base, min(base + CHUNK, total)):
                spec, channel, type_, data, corr = pool_rows[k % len(pool_rows)]
                ts = start + step * k
                row = {
                    "event_id": new_id(),
                    "device_id": spec.id,
                    "kind": spec.kind,
                    "channel": channel,
                    "type": type_,
                    "seq": seq[spec.id],
                    "boot": boots[spec.id],
                    "ts": ts,
                    "received_at": ts + timedelta(milliseconds=20),
                    "correlation_id": corr,
                    "injected": False,
                    "run_id": None,
                    "data": data,
                }
                seq[spec.id] += 1
                rows.append({c: v for c, v in row.items() if c in columns})
                if channel == "events":
                    types[type_] += 1
                    spec_k = kinds.get(spec.kind)
                    for stat in spec_k.stats if spec_k else ():
                        if stat.counts(type_, data):
                            hour = ts.replace(minute=0, second=0, microsecond=0)
                            stats[(spec.id, stat.name, hour, spec.kind)] += 1
            conn.execute(insert(events), rows)
        conn.execute(
            insert(table(StatHourly)),
            [
                {"device_id": d, "stat": s, "hour": h, "kind": k, "count": n}
                for (d, s, h, k), n in stats.items()
            ],
        )
    load_s = time.monotonic() - t0
    engine.dispose()
    return {
        "rows": total,
        "load_s": load_s,
        "rows_per_s": total / load_s,
        "stat_rows": len(stats),
        "types": types,
        "days": days,
    }


def _explain(db: Path, sql: str, params: tuple[Any, ...]) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return "; ".join(r[-1] for r in rows)


def measure(
    client: httpx.Client, path: str, params: dict[str, Any], n: int, pages: int, budget_s: float
) -> dict[str, Any]:
    """`n` rounds (after 5 warm-up rounds); each round reads `pages` pages by cursor."""
    first: list[float] = []
    deeper: list[float] = []
    rows = 0
    deadline = time.monotonic() + budget_s
    rounds = 0
    for r in range(n + 5):
        cursor = None
        for page in range(pages):
            q = dict(params)
            if cursor:
                q["cursor"] = cursor
            t = time.perf_counter()
            resp = client.get(path, params=q)
            ms = (time.perf_counter() - t) * 1000
            resp.raise_for_status()
            body = resp.json()
            if r >= 5:
                (first if page == 0 else deeper).append(ms)
                rows += len(body.get("data", [])) if isinstance(body, dict) else 0
            cursor = body.get("next_cursor") if isinstance(body, dict) else None
            if not cursor:
                break
        rounds = r + 1
        if time.monotonic() > deadline and r >= 5:
            break
    every = first + deeper
    return {
        "path": path,
        "params": params,
        "rounds": max(0, rounds - 5),
        "requests": len(every),
        "rows_per_request": rows / len(every) if every else 0,
        "p50_ms": percentile(every, 50),
        "p95_ms": percentile(every, 95),
        "p99_ms": percentile(every, 99),
        "page1_p95_ms": percentile(first, 95),
        "deeper_p95_ms": percentile(deeper, 95),
    }


def run(parent: Path, quick: bool) -> dict[str, Any]:
    total = 20_000 if quick else 1_000_000
    n = 10 if quick else 100
    budget = 3.0 if quick else 15.0
    ws = Workspace.create("api", parent)
    try:
        fleet, fleet_file = ws.fleet(200)
        _creds, creds_dir = ws.credentials(fleet)
        db = ws.base / "api.db"
        log(f"api: bulk-loading {total:,} events (SQLAlchemy Core executemany)")
        load = bulk_load(db, fleet, total)
        log(f"  {load['rows_per_s']:,.0f} rows/s ({load['load_s']:.0f} s)")
        broker = ws.broker(creds_dir)
        backend = ws.backend(broker.port, creds_dir, db, fleet_file).start()
        gate = next(d.id for d in fleet.devices if d.kind == "gate")
        common_type = load["types"].most_common(1)[0][0]
        rare_type = next(t for t, c in sorted(load["types"].items(), key=lambda x: x[1]) if c >= 1)
        yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
        queries: list[tuple[str, str, dict[str, Any], int]] = [
            ("health (baseline)", "/health", {}, 1),
            ("events, no filter", "/events", {"limit": 100}, 3),
            ("events, device_id", "/events", {"device_id": gate, "limit": 100}, 3),
            (f"events, type={common_type}", "/events", {"type": common_type, "limit": 100}, 3),
            (
                "events, device_id + type=entry-denied",
                "/events",
                {"device_id": gate, "type": "entry-denied", "limit": 100},
                3,
            ),
            (
                "events, kind=medicine-cabinet",
                "/events",
                {"kind": "medicine-cabinet", "limit": 100},
                3,
            ),
            (f"events, rare type={rare_type}", "/events", {"type": rare_type, "limit": 100}, 3),
            ("stats, today", "/stats", {}, 1),
            ("stats, yesterday", "/stats", {"day": yesterday}, 1),
        ]
        results: dict[str, Any] = {}
        try:
            with httpx.Client(
                base_url=backend.url, headers={"X-API-Key": READ_KEY}, timeout=60
            ) as client:
                for label, path, params, pages in queries:
                    log(f"api: {label}")
                    res = measure(client, path, params, n, pages, budget)
                    results[label] = res
                    log(
                        f"  p50 {res['p50_ms']:.1f} ms, p95 {res['p95_ms']:.1f} ms "
                        f"({res['requests']} requests)"
                    )
                base = results["health (baseline)"]["p95_ms"]
                for res in results.values():
                    res["ratio_to_health"] = res["p95_ms"] / base
                slow = [label for label, r in results.items() if r["p95_ms"] > TARGET_P95_MS]
                profiles: dict[str, str | None] = {}
                assert backend.proc is not None
                for label in slow[: 0 if quick else 2]:
                    _, path, params, pages = next(q for q in queries if q[0] == label)
                    raw = ws.base / f"api-profile-{len(profiles)}.txt"
                    spy = profile.record(backend.proc.pid, 8, raw)
                    if spy is None:
                        break
                    log(f"api: profiling {label} (py-spy, 8 s)")
                    time.sleep(0.5)
                    measure(client, path, params, 10_000, pages, 7.0)
                    spy.wait(30)
                    summary = profile.summarise(raw)
                    profiles[label] = (
                        summary.as_text(f"backend serving {label}") if summary else None
                    )
        finally:
            backend.stop()
        plans = {
            "type filter": _explain(
                db,
                "SELECT * FROM event WHERE channel = ? AND type = ? ORDER BY id DESC LIMIT 100",
                ("events", rare_type),
            ),
            "device_id filter": _explain(
                db,
                "SELECT * FROM event WHERE channel = ? AND device_id = ? ORDER BY id DESC "
                "LIMIT 100",
                ("events", gate),
            ),
            "kind filter": _explain(
                db,
                "SELECT * FROM event WHERE channel = ? AND kind = ? ORDER BY id DESC LIMIT 100",
                ("events", "medicine-cabinet"),
            ),
            # The hourly query of GET /stats (backend/api/routes/stats.py).
            "stats hourly": _explain(
                db,
                "SELECT kind, stat, hour, sum(count) FROM stat_hourly WHERE hour >= ? AND "
                "hour < ? GROUP BY kind, stat, hour ORDER BY hour",
                ("2026-01-01 00:00:00", "2026-01-02 00:00:00"),
            ),
        }
        return {
            "rows": total,
            "load": {k: v for k, v in load.items() if k != "types"},
            "type_counts": dict(load["types"].most_common()),
            "rare_type": rare_type,
            "devices": len(fleet.devices),
            "rounds": n,
            "results": results,
            "profiles": profiles,
            "plans": plans,
        }
    finally:
        ws.close()
