"""Points 4-6 of "what limits it" (simulator, embedded broker, API): a paragraph per function."""

from __future__ import annotations

from typing import Any

from bench.report.fmt import NAN, get, n, ratio, sim_at
from bench.report.results import Delivery, Results, SimRow, Simulator
from bench.targets import TARGET_CORES, TARGET_DEVICES, TARGET_MB, TARGET_P95_MS

# Each paragraph states only what this run's numbers show; the causes were found with
# tracemalloc and EXPLAIN QUERY PLAN while building the benchmarks.
_1S = "mosquitto-autosave-1s"


def _g(d: Any, *path: Any) -> Any:
    return get(d, *path, default=NAN)


def _top_file(text: str | None) -> tuple[str, float, float]:
    """(file, MB, total MB) of the largest entry of the tracemalloc text of sim_worker."""
    if not text:
        return "", NAN, NAN
    lines = text.splitlines()
    try:
        total = float(lines[0].split("traced ", 1)[1].split(" MB", 1)[0])
        mb, name = lines[1].split("MB", 1)
        return name.strip(), float(mb), total
    except (IndexError, ValueError):
        return "", NAN, NAN


def simulator(res: Results) -> list[str]:
    """4. CPU and memory of the simulator at the target size against bare paho clients."""
    sim = res.get("simulator", {})
    at, bare = sim_at(sim, "fleet", TARGET_DEVICES), sim_at(sim, "bare", TARGET_DEVICES)
    if not at:
        return []
    big = get(sim, "fleet", -1, default={})
    mem_ok = at["rss_delta_mb"] <= TARGET_MB
    cpu_ok = at["cpu_cores"] <= TARGET_CORES
    out = [
        f"**4. Simulator: {TARGET_DEVICES:,} devices use {at['cpu_cores']:.2f} cores "
        f"({'within' if cpu_ok else 'over'} the {TARGET_CORES:g}-core target) while publishing "
        f"{at['msgs_per_s']:,.0f} msg/s at x{sim.get('busy_speed', 60):g}, and "
        f"{at['rss_delta_mb']:.0f} MB ({at['kb_per_device']:.0f} kB/device: "
        f"{ratio(at['rss_delta_mb'], TARGET_MB):.1f}× the {TARGET_MB:.0f} MB target"
        f"{'' if mem_ok else ', missed'}).** The bare paho clients on the same loop take "
        f"{n(bare.get('kb_per_device'), '.0f')} kB/device "
        f"({ratio(at['rss_delta_mb'], bare.get('rss_delta_mb')):.1f}× less); the rest is the "
        f"simulation's own objects per device. {n(big.get('connected_at_end'))} of "
        f"{n(big.get('devices'))} devices stayed connected for the hold.",
        "",
    ]
    return out if mem_ok else out + _memory(sim, bare)


def _memory(sim: Simulator, bare: SimRow) -> list[str]:
    """Where the simulator's memory goes, when it misses the target."""
    top, top_mb, total_mb = _top_file(get(sim, "memory", "text"))
    book_house = (
        ": every book house keeps a dict of loans and heaps of return and overdue times (20 % "
        "of its 3,000 books start on loan: ~600 loans of ~400 bytes each); its shelf is an "
        "array of 4-byte book numbers (a list of int objects until 2026-11-22: 14 MB of 61 MB "
        "at 1,000 devices)."
    )
    return [
        f"Where it goes (tracemalloc, section 3): of {n(total_mb, '.0f')} MB traced for "
        f"{n(_g(sim, 'memory', 'devices'))} devices, **{n(top_mb, '.0f')} MB are allocated in "
        f"`{top}`**"
        + (book_house if "book_house" in top else ".")
        + " Recommendations (product, `devices/`): keep the loan state compact (one tuple per "
        "loan with times as integers, no separate dict and two heaps); the school's daily entry "
        "list likewise. That brings a device near the bare paho client. Note that the baseline "
        "itself — one bare paho client per device on the same loop, plus the fleet file and the "
        f"credentials — took {n(bare.get('rss_delta_mb'))} MB at {TARGET_DEVICES:,} devices "
        f"({n(bare.get('kb_per_device'), '.0f')} kB each): 100 MB for 5,000 devices is below "
        "what one paho `Client` per device costs, so the memory target needs a lighter "
        "per-device MQTT client as well (paho keeps per-client buffers, locks, callbacks and a "
        "topic matcher).",
        "",
    ]


def _why_embedded_stops(steps: list[Delivery]) -> str:
    """What happened at the first rate the embedded broker did not sustain."""
    none: Delivery = {}
    nxt = next((s for s in steps if not s["sustained"]), none)
    if not nxt:
        return "it kept up with every rate tried"
    if nxt.get("lost") and nxt.get("p99_ms", 1e9) <= 250:
        return (
            f"at {n(nxt.get('rate'))} msg/s {n(nxt.get('lost'))} QoS-1 message(s) published "
            "never reached the subscriber (waited 15 s), although latency was still low (p99 "
            f"{n(nxt.get('p99_ms'), '.0f')} ms): a delivery loss, not overload"
        )
    lost = f", {n(nxt.get('lost'))} message(s) never delivered within 15 s"
    return (
        f"at {n(nxt.get('rate'))} msg/s it falls behind (received "
        f"{n(nxt.get('received_rate'))}/s, p99 {n(nxt.get('p99_ms'), '.0f')} ms"
        + (lost if nxt.get("lost") else "")
        + ")"
    )


def embedded(res: Results) -> list[str]:
    """5. The embedded broker's sustained rate and ceiling against Mosquitto."""
    emb = get(res, "embedded", "brokers", default={})
    e = emb.get("embedded", {})
    if not e:
        return []
    e_rate = e.get("sustainable_rate", 0)
    none: Delivery = {}
    step = next((s for s in e.get("steps", []) if s["rate"] == e_rate), none)
    return [
        f"**5. The embedded broker (amqtt) sustains {n(e_rate)} msg/s** for one publisher "
        f"and one subscriber (p99 {n(step.get('p99_ms'), '.0f')} ms there); "
        f"{_why_embedded_stops(e.get('steps', []))}. Its ceiling (one publisher as fast as it "
        f"can) is {n(_g(e, 'burst', 'received_rate'))} msg/s ({n(_g(e, 'burst', 'lost'))} of "
        f"{n(_g(e, 'burst', 'sent'))} lost), with the broker process at "
        f"{n(_g(e, 'burst', 'cpu_cores', 'broker'), '.2f')} cores: a pure-Python broker on one "
        "asyncio loop. Mosquitto with the once-a-second save reached "
        f"{n(_g(emb, _1S, 'burst', 'received_rate'))} msg/s at "
        f"{n(_g(emb, _1S, 'burst', 'cpu_cores', 'broker'), '.2f')} cores, as shipped "
        f"{n(_g(emb, 'mosquitto', 'burst', 'received_rate'))} msg/s. The embedded broker is "
        "fine for the default street and demos (a few messages per second) and for the "
        "simulator at real time; it is not for load tests, and QoS-1 delivery through it is not "
        "to be relied on at high rates (amqtt 0.12 lost single messages in several runs while "
        "building this benchmark).",
        "",
    ]


def api(res: Results) -> list[str]:
    """6. The API's slowest queries against the p95 target, and the plans behind them."""
    api = res.get("api", {})
    if "results" not in api:
        return []
    plans = api.get("plans", {})
    slow = {k: v for k, v in api["results"].items() if v["p95_ms"] >= TARGET_P95_MS}
    if not slow:
        worst = max(api["results"].items(), key=lambda kv: kv[1]["p95_ms"])
        return [
            f"**6. API:** every query's p95 is under {TARGET_P95_MS:.0f} ms at "
            f"{api['rows']:,} events (slowest: `{worst[0]}`, {worst[1]['p95_ms']:.1f} ms). "
            "The type filter and `/stats` use the indexes of migration 0004: "
            f"`{plans.get('type filter')}` and `{plans.get('stats hourly')}`. Before them "
            "(full run of 2026-11-22 08:18 UTC) the type filter planned `SCAN event`, which "
            "for a rare type read most of the table for every page (p95 241.5 ms), and "
            "`/stats` read all of `stat_hourly` to keep one day (p95 53.5 ms).",
            "",
        ]
    out = [
        f"**6. API at {api['rows']:,} events:** p95 over {TARGET_P95_MS:.0f} ms for "
        + "; ".join(
            f"`{k}` {v['p95_ms']:.0f} ms ({ratio(v['p95_ms'], TARGET_P95_MS):.1f}× the target)"
            for k, v in slow.items()
        )
        + "."
    ]
    if any("rare type" in k or "type=" in k for k in slow):
        out += [
            "",
            f"A `type` filter has no index: SQLite plans `{plans.get('type filter')}` — it "
            "walks the table newest first until it has 100 matching rows, so a rare type (here "
            f"`{api.get('rare_type')}`) reads most of the table for every page; the profile "
            "shows the time inside SQLite (`fetchall`/`do_execute`: SQLite steps through the "
            "scan while rows are fetched), not in Python. Recommendation (product, "
            "`backend/models.py` + a migration): `Index('ix_event_channel_type_id', 'channel', "
            "'type', 'id')` (and, if the console filters by kind and type together, `('kind', "
            "'type', 'id')`). Device filters already use `ix_event_device_id_id`.",
        ]
    if any(k.startswith("stats") for k in slow):
        out += [
            "",
            "`/stats` spends its time in SQLite too (`do_execute`): its hourly query plans "
            f"`{plans.get('stats hourly')}` — `stat_hourly` has no index on `hour`, so every "
            f"call reads all of it ({n(_g(api, 'load', 'stat_rows'))} rows for "
            f"{n(_g(api, 'load', 'days'))} days of {n(api.get('devices'))} devices) to keep one "
            "day. It grows with history: the table is kept when personal events are purged, so "
            "a year of 1,000 devices is up to tens of millions of rows. Recommendation "
            "(product): `Index('ix_stat_hourly_hour', 'hour')` (or `('hour', 'kind', 'stat')`). "
            "Part of this run's `/stats` time is also the other processes on the machine "
            f"({n(_g(res, 'load', 'api', 'other_cores'), '.2f')} cores during this benchmark).",
        ]
    return [*out, ""]
