"""Sections 1-5 of docs/benchmarks.md: each benchmark's method (templates.py) and its tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from bench.report import templates
from bench.report.fmt import (
    code_block,
    cores,
    get,
    live_rate,
    n,
    ratio,
    sim_at,
    sweeps,
    table,
    times,
)
from bench.report.results import Api, Delivery, Drain, Embedded, Live, Run, Simulator, Sweep
from bench.targets import TARGET_P95_MS

Arrived = Literal["stored_rate", "received_rate"]  # the backend's store, or a bare subscriber
QueryFigure = Literal[
    "rows_per_request", "p50_ms", "p95_ms", "p99_ms", "page1_p95_ms", "deeper_p95_ms"
]


def _failed(entry: Mapping[str, object] | None) -> str:
    """The whole section of a benchmark that failed ({"error": ...}) or did not run (None)."""
    return f"Failed: `{'not run' if entry is None else entry['error']}`"


_DRAIN_CONSUMERS = (
    ("mosquitto_sub", "`mosquitto_sub -c -q 1` (baseline)"),
    ("paho", "bare paho 2.x, manual ack (baseline)"),
    ("backend", "**backend** (`python -m backend`, ingest → SQLite)"),
    ("prototype", "single-threaded ingest prototype (bench/, not product)"),
)


def drain(d: Drain | None) -> str:
    if d is None or "error" in d:
        return _failed(d)
    r = d["results"]
    rows = []
    for cfg, rc in d.get("by_config", {"autosave-1s": r}).items():
        for key, label in _DRAIN_CONSUMERS:
            x = rc.get(key)
            if x:
                rows.append(
                    [
                        cfg,
                        label,
                        f"{x['count']:,}",
                        n(x["rate"]),
                        times(ratio(x["rate"], rc["paho"]["rate"])),
                        times(ratio(x["rate"], rc["mosquitto_sub"]["rate"])),
                        cores(x.get("cpu_cores")),
                    ]
                )
    head = ["broker config", "consumer", "messages", "msg/s", "vs paho", "vs mosquitto_sub"]
    b, q = r["backend"], d.get("queueing", {})
    text = templates.DRAIN.substitute(
        n=f"{d['n']:,}",
        payload_bytes=f"{d['payload_bytes_mean']:.0f}",
        devices=d["devices"],
        wall_s=f"{b['wall_s']:.1f}",
        rate_incl_startup=n(b["rate_incl_startup"]),
        stored=f"{b['count']:,}",
        duplicates=b["duplicates"],
        dead_lettered=b["dead_lettered"],
        table=table([*head, "CPU (cores, average)"], rows),
        queued=f"{q.get('n', 0):,}",
        queued_shipped=n(q.get("shipped")),
        queued_prefill=n(q.get("prefill_config")),
        queued_ratio=times(ratio(q.get("shipped"), q.get("prefill_config"))),
    )
    prof = d.get("profile", {})
    listing = prof.get("text")
    if not listing:
        return text
    intro = (
        f"Profile of the backend during a separate drain of {prof['n']:,} "
        f"(under py-spy it drained {n(prof['rate_under_profiler'])} msg/s):"
    )
    return "\n".join([text, *code_block(intro, listing)])


_STEP_HEAD = ["run", "offered ev/s", "s", "achieved", "stored/s", "lost", "behind at stop"]
_LATENCY_HEAD = ["p50 ms", "p99 ms", "max ms", "sustained", "CPU (cores)"]


def _live_row(label: str, s: Run, received: Arrived, behind: str, ok: str) -> list[str]:
    return [
        label,
        n(s["rate"]),
        f"{s['seconds']:.0f}",
        n(s["offered_rate"]),
        n(s[received]),
        f"{s['lost']:,}",
        behind,
        n(s["p50_ms"]),
        n(s["p99_ms"]),
        n(s["max_ms"]),
        ok,
        cores(s.get("cpu_cores")),
    ]


def _live_rows(sw: Sweep) -> list[list[str]]:
    runs = (
        [("probe", x) for x in sw.get("steps", [])]
        + [("confirm", x) for x in sw.get("confirms", [])]
        + ([("latency (half rate)", sw["latency"])] if "latency" in sw else [])
    )
    rows = [
        _live_row(
            label, s, "stored_rate", f"{s['backlog_at_stop']:,}", "yes" if s["sustained"] else "no"
        )
        for label, s in runs
    ]
    for key in ("baseline_half", "baseline_full"):
        if sw.get(key):
            rows.append(_live_row("baseline: bare subscriber", sw[key], "received_rate", "–", "–"))
    return rows


def live(lv: Live | None) -> str:
    if lv is None or "error" in lv:
        return _failed(lv)
    text = [templates.LIVE]
    for name, sw in sweeps(lv):
        ov = ", ".join(f"`{k} {v}`" for k, v in sw.get("overrides", {}).items()) or "as shipped"
        text += [
            "",
            f"**Broker config: {name}** ({ov}); {sw['devices']:,} devices; sustainable "
            f"rate **{live_rate(sw)}**.",
            "",
            table([*_STEP_HEAD, *_LATENCY_HEAD], _live_rows(sw)),
        ]
    prof = lv.get("profile", {})
    listing = prof.get("text")
    if listing:
        intro = (
            f"Profile of the backend during a separate {prof['seconds']:.0f} s step at "
            f"{prof['rate']:,.0f} ev/s with {prof['devices']:,} devices (broker "
            f"autosave-1s, so the backend is the limit; stored {n(prof['stored_rate'])}/s "
            "under the profiler):"
        )
        text += code_block(intro, listing)
    return "\n".join(text)


_SIM_HEAD = ["simulator", "devices", "connected at end", "broker counts", "connect s", "msg/s"]
_SIM_COST = ["CPU cores", "RSS Δ MB", "kB/device", "RSS vs bare", "broker CPU"]


def simulator(sim: Simulator | None) -> str:
    if sim is None or "error" in sim:
        return _failed(sim)
    rows = []
    for runs, label in (
        (sim.get("bare", []), "bare paho (baseline)"),
        (sim.get("fleet", []), f"FleetRunner x{sim['busy_speed']:g}"),
        (sim.get("realtime", []), "FleetRunner x1 (real time)"),
    ):
        for r in runs:
            bare = sim_at(sim, "bare", r["devices"])
            rows.append(
                [
                    label,
                    f"{r['devices']:,}",
                    f"{r['connected_at_end']:,}",
                    n(r.get("broker_clients_connected")),
                    f"{r['connect_s']:.1f}",
                    n(r["msgs_per_s"]),
                    f"{r['cpu_cores']:.3f}",
                    f"{r['rss_delta_mb']:.0f}",
                    f"{r['kb_per_device']:.1f}",
                    times(ratio(r["rss_delta_mb"], bare.get("rss_delta_mb"))),
                    f"{r['broker_cpu_cores']:.2f}",
                ]
            )
    method = templates.SIMULATOR.substitute(
        speed=f"{sim['busy_speed']:g}", hold_s=f"{sim['hold_s']:.0f}"
    )
    text = [method, "", table([*_SIM_HEAD, *_SIM_COST], rows)]
    mem = sim.get("memory", {})
    listing = mem.get("text")
    if listing:
        intro = f"Largest allocations (tracemalloc) of FleetRunner with {mem['devices']:,} devices "
        text += code_block(intro + "connected:", listing)
    return "\n".join(text)


def _emb_row(name: str, run: str, s: Delivery, digits: str, ok: str) -> list[str]:
    return [
        name,
        run,
        n(s["received_rate"]),
        f"{s['lost']:,}",
        n(s["p50_ms"], digits),
        n(s["p99_ms"], digits),
        ok,
        n(get(s, "cpu_cores", "broker"), ".2f"),
    ]


def embedded(emb: Embedded | None) -> str:
    if emb is None or "error" in emb:
        return _failed(emb)
    rows = []
    for name, b in emb["brokers"].items():
        for s in b.get("steps", []):
            rows.append(_emb_row(name, n(s["rate"]), s, ".1f", "yes" if s["sustained"] else "no"))
        if b.get("burst"):
            rows.append(_emb_row(name, f"burst {b['burst']['sent']:,}", b["burst"], ".0f", "–"))
    head = ["broker", "offered msg/s", "received msg/s", "lost", "p50 ms", "p99 ms"]
    method = templates.EMBEDDED.substitute(seconds=f"{emb['seconds']:.0f}")
    return "\n".join([method, "", table([*head, "sustained", "broker CPU"], rows)])


_API_COLUMNS: tuple[QueryFigure, ...] = (
    "rows_per_request",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "page1_p95_ms",
    "deeper_p95_ms",
)
_API_HEAD = ["query", "request", "requests", "rows/page", "p50 ms", "p95 ms", "p99 ms"]
_API_PAGES = ["page 1 p95", "pages 2-3 p95", "p95 vs /health", f"< {TARGET_P95_MS:.0f} ms"]


def api(api: Api | None) -> str:
    if api is None or "error" in api:
        return _failed(api)
    rows = []
    for label, r in api["results"].items():
        params = "&".join(f"{k}={v}" for k, v in r["params"].items())
        rows.append(
            [
                label,
                f"`{r['path']}{'?' + params if params else ''}`",
                str(r["requests"]),
                *(n(r[k], ".1f" if k != "rows_per_request" else ".0f") for k in _API_COLUMNS),
                times(r.get("ratio_to_health", float("nan"))),
                "yes" if r["p95_ms"] < TARGET_P95_MS else "**no**",
            ]
        )
    load = api["load"]
    method = templates.API.substitute(
        rows=f"{api['rows']:,}",
        devices=api["devices"],
        days=f"{load['days']:.0f}",
        rows_per_s=n(load["rows_per_s"]),
        load_s=f"{load['load_s']:.0f}",
        stat_rows=f"{load['stat_rows']:,}",
        rounds=api["rounds"],
    )
    text = [
        method,
        "",
        table([*_API_HEAD, *_API_PAGES], rows),
        "",
        "SQLite's plans for the listing query (`EXPLAIN QUERY PLAN`, newest first, 100 rows):",
        "",
    ]
    text += [f"- {k}: `{v}`" for k, v in api.get("plans", {}).items()]
    for label, prof in (api.get("profiles") or {}).items():
        if prof:
            text += code_block(f"Profile of the backend while serving `{label}` in a loop:", prof)
    return "\n".join(text)
