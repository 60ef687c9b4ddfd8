"""docs/benchmarks.md and docs/benchmarks.png from the results of one run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.api import TARGET_P95_MS
from bench.live import TARGET_P99_MS, TARGET_RATE
from bench.simulator import TARGET_CORES, TARGET_DEVICES, TARGET_MB


def _n(x: Any, fmt: str = ",.0f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return format(x, fmt)


def _ratio(a: Any, b: Any) -> float:
    try:
        return float(a) / float(b) if b else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def _r(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.2f}×"


def _ok(flag: bool | None) -> str:
    return "–" if flag is None else ("**met**" if flag else "**missed**")


def _get(d: Any, *path: Any, default: Any = None) -> Any:
    for p in path:
        if (isinstance(d, dict) and p in d) or (
            isinstance(d, list) and isinstance(p, int) and -len(d) <= p < len(d)
        ):
            d = d[p]
        else:
            return default
    return d


def live_rate(sw: dict[str, Any]) -> str:
    """ "1,000 ev/s", or what was seen when no probed rate held for the whole confirm window."""
    rate = sw.get("sustainable_rate", 0)
    if rate:
        return f"{rate:,} ev/s"
    tried = [c["rate"] for c in sw.get("confirms", [])]
    probes = [s["rate"] for s in sw.get("steps", []) if s["sustained"]]
    if tried:
        return (
            f"< {min(tried):,.0f} ev/s (none of {', '.join(f'{t:,.0f}' for t in tried)} "
            f"held for {sw['confirms'][0]['seconds']:.0f} s; short probes passed up to "
            f"{max(probes):,.0f})"
        )
    return "< the lowest rate tried"


def _sim_at(sim: dict[str, Any], key: str, n: int) -> dict[str, Any]:
    return next((r for r in sim.get(key, []) if r["devices"] == n), {})


# -- headline rows -----------------------------------------------------------------------------
def headlines(res: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    d = res.get("drain", {})
    if "results" in d:
        b, p = d["results"]["backend"], d["results"]["paho"]
        ratio = _ratio(b["rate"], p["rate"])
        sb = _get(d, "by_config", "shipped", default={})
        rows.append(
            {
                "what": f"1. Drain of {d['n']:,} queued QoS-1 events, backend → SQLite (broker "
                "autosave once a second, so that the broker is not the bottleneck)",
                "value": f"{_n(b['rate'])} msg/s (shipped broker config: "
                f"{_n(_get(sb, 'backend', 'rate'))})",
                "baseline": f"bare paho {_n(p['rate'])} msg/s; mosquitto_sub "
                f"{_n(d['results']['mosquitto_sub']['rate'])} msg/s (shipped: "
                f"{_n(_get(sb, 'paho', 'rate'))} / "
                f"{_n(_get(sb, 'mosquitto_sub', 'rate'))})",
                "ratio": f"{_r(ratio)} of paho (shipped: "
                f"{_r(_ratio(_get(sb, 'backend', 'rate'), _get(sb, 'paho', 'rate')))})",
                "target": "≥ 0.6× paho",
                "met": ratio >= 0.6,
            }
        )
    lv = res.get("live", {})
    shipped = lv.get("shipped", {})
    if "steps" in shipped:
        rate = shipped.get("sustainable_rate", 0)
        conf = shipped.get("confirm", {})
        base = shipped.get("baseline_full", {})
        rows.append(
            {
                "what": f"2. Live, {shipped['devices']:,} simulated devices → Mosquitto (shipped "
                "config) → backend → SQLite, 60 s, 0 lost",
                "value": f"{live_rate(shipped)} sustained (stored "
                f"{_n(conf.get('stored_rate'))}/s, lost {_n(conf.get('lost'))})",
                "baseline": f"bare subscriber at {_n(base.get('rate'))} ev/s: received "
                f"{_n(base.get('received_rate'))}/s, p99 {_n(base.get('p99_ms'))} ms",
                "ratio": f"{_r(_ratio(conf.get('stored_rate'), base.get('received_rate')))} of the "
                f"bare subscriber; {_r(_ratio(rate, TARGET_RATE))} of target",
                "target": f"≥ {TARGET_RATE:,} ev/s",
                "met": rate >= TARGET_RATE,
            }
        )
        lat, bl = shipped.get("latency", {}), shipped.get("baseline_half", {})
        rows.append(
            {
                "what": f"2. Publish→commit latency at half that rate ({_n(lat.get('rate'))} ev/s)",
                "value": f"p50 {_n(lat.get('p50_ms'))} ms, p99 {_n(lat.get('p99_ms'))} ms",
                "baseline": f"bare subscriber p50 {_n(bl.get('p50_ms'))} ms, p99 "
                f"{_n(bl.get('p99_ms'))} ms",
                "ratio": f"p99 {_r(_ratio(lat.get('p99_ms'), bl.get('p99_ms')))} of the bare "
                "subscriber",
                "target": f"p99 ≤ {TARGET_P99_MS:.0f} ms",
                "met": (lat.get("p99_ms") or 1e9) <= TARGET_P99_MS and rate >= TARGET_RATE,
            }
        )
    var = lv.get("autosave-1s", {})
    if "steps" in var:
        lat = var.get("latency", {})
        rows.append(
            {
                "what": "2b. Same with the broker's autosave once a second (not shipped)",
                "value": f"{live_rate(var)} sustained; at "
                f"{_n(lat.get('rate'))} ev/s p50 {_n(lat.get('p50_ms'))} ms, p99 "
                f"{_n(lat.get('p99_ms'))} ms",
                "baseline": f"bare subscriber p99 {_n(_get(var, 'baseline_half', 'p99_ms'))} ms at "
                f"{_n(_get(var, 'baseline_half', 'rate'))} ev/s",
                "ratio": _r(_ratio(var.get("sustainable_rate"), shipped.get("sustainable_rate")))
                + " of shipped",
                "target": f"≥ {TARGET_RATE:,} ev/s, p99 ≤ {TARGET_P99_MS:.0f} ms",
                "met": (
                    var.get("sustainable_rate", 0) >= TARGET_RATE
                    and (lat.get("p99_ms") or 1e9) <= TARGET_P99_MS
                ),
            }
        )
    sim = res.get("simulator", {})
    if "fleet" in sim:
        at = _sim_at(sim, "fleet", TARGET_DEVICES) or _get(sim, "fleet", -1, default={})
        bare = _sim_at(sim, "bare", at.get("devices", 0))
        rt = _get(sim, "realtime", 0, default={})
        biggest = _get(sim, "fleet", -1, default={})
        what = (
            f"3. Simulator, {_n(at.get('devices'))} devices at x{_n(sim.get('busy_speed'))} "
            f"({_n(at.get('msgs_per_s'))} msg/s)"
        )
        rows.append(
            {
                "what": what + ": CPU",
                "value": f"{_n(at.get('cpu_cores'), '.2f')} cores (real time x1: "
                f"{_n(rt.get('cpu_cores'), '.2f')})",
                "baseline": f"bare paho clients, idle: {_n(bare.get('cpu_cores'), '.3f')} cores",
                "ratio": f"{_r(_ratio(at.get('cpu_cores'), TARGET_CORES))} of the target",
                "target": f"≤ {TARGET_CORES:g} core",
                "met": at.get("devices") == TARGET_DEVICES
                and at.get("cpu_cores", 9) <= TARGET_CORES,
            }
        )
        rows.append(
            {
                "what": what + ": memory",
                "value": f"{_n(at.get('rss_delta_mb'))} MB "
                f"({_n(at.get('kb_per_device'), '.0f')} kB/device)",
                "baseline": f"bare paho clients: {_n(bare.get('rss_delta_mb'))} MB "
                f"({_n(bare.get('kb_per_device'), '.0f')} kB/device)",
                "ratio": f"{_r(_ratio(at.get('rss_delta_mb'), bare.get('rss_delta_mb')))} of "
                "bare paho",
                "target": f"≤ {TARGET_MB:.0f} MB",
                "met": at.get("devices") == TARGET_DEVICES
                and at.get("rss_delta_mb", 1e9) <= TARGET_MB,
            }
        )
        rows.append(
            {
                "what": f"3. {_n(biggest.get('devices'))} devices held connected",
                "value": f"{_n(biggest.get('connected_at_end'))} connected after "
                f"{_n(biggest.get('hold_s'))} s (broker counts "
                f"{_n(biggest.get('broker_clients_connected'))}); connect "
                f"{_n(biggest.get('connect_s'), '.1f')} s",
                "baseline": f"bare paho: connect "
                f"{_n(_sim_at(sim, 'bare', biggest.get('devices', 0)).get('connect_s'), '.1f')} s",
                "ratio": "–",
                "target": "10,000 held",
                "met": biggest.get("devices", 0) >= 10_000
                and biggest.get("connected_at_end", 0) >= 10_000,
            }
        )
    emb = res.get("embedded", {})
    if "brokers" in emb:
        e = emb["brokers"].get("embedded", {})
        m = emb["brokers"].get("mosquitto", {})
        m1 = emb["brokers"].get("mosquitto-autosave-1s", {})
        rate = e.get("sustainable_rate", 0)
        e_step: dict[str, Any] = next((s for s in e.get("steps", []) if s["rate"] == rate), {})
        rows.append(
            {
                "what": "4. Embedded broker (amqtt), one publisher → one subscriber, QoS 1",
                "value": f"{_n(rate)} msg/s sustained, p99 {_n(e_step.get('p99_ms'), '.0f')} ms "
                f"there; ceiling {_n(_get(e, 'burst', 'received_rate'))} msg/s",
                "baseline": f"Mosquitto shipped {_n(m.get('sustainable_rate'))} msg/s (ceiling "
                f"{_n(_get(m, 'burst', 'received_rate'))}); autosave-1s ≥ "
                f"{_n(m1.get('sustainable_rate'))} (ceiling "
                f"{_n(_get(m1, 'burst', 'received_rate'))})",
                "ratio": "ceiling "
                + _r(_ratio(_get(e, "burst", "received_rate"), _get(m1, "burst", "received_rate")))
                + " of Mosquitto autosave-1s",
                "target": "document the ceiling",
                "met": None,
            }
        )
    api = res.get("api", {})
    if "results" in api:
        res_api = api["results"]
        health = res_api.get("health (baseline)", {})
        events = {k: v for k, v in res_api.items() if k.startswith("events")}
        stats = {k: v for k, v in res_api.items() if k.startswith("stats")}
        worst = max(events.items(), key=lambda kv: kv[1]["p95_ms"]) if events else ("", {})
        worst_s = max(stats.items(), key=lambda kv: kv[1]["p95_ms"]) if stats else ("", {})
        for label, r in (worst, worst_s):
            if not r:
                continue
            rows.append(
                {
                    "what": f"5. API at {api['rows']:,} events: slowest "
                    f"{label.split(',')[0]} query "
                    f"({label})",
                    "value": f"p95 {_n(r['p95_ms'], '.1f')} ms (p50 {_n(r['p50_ms'], '.1f')})",
                    "baseline": f"GET /health p95 {_n(health.get('p95_ms'), '.1f')} ms",
                    "ratio": _r(_ratio(r["p95_ms"], health.get("p95_ms"))),
                    "target": f"p95 < {TARGET_P95_MS:.0f} ms",
                    "met": r["p95_ms"] < TARGET_P95_MS,
                }
            )
    return rows


def summary_text(res: dict[str, Any]) -> str:
    lines = ["Lijia Street benchmarks" + (" (quick)" if res.get("quick") else "")]
    for row in headlines(res):
        met = "" if row["met"] is None else (" [met]" if row["met"] else " [MISSED]")
        lines.append(
            f"- {row['what']}: {row['value']} | baseline {row['baseline']} | "
            f"{row['ratio']} | target {row['target']}{met}"
        )
    for name in ("drain", "live", "simulator", "embedded", "api"):
        if isinstance(res.get(name), dict) and "error" in res[name]:
            lines.append(f"- {name}: FAILED: {res[name]['error']}")
    return "\n".join(lines)


# -- markdown ----------------------------------------------------------------------------------
def _table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _cores(c: dict[str, float] | None) -> str:
    if not c:
        return "–"
    return ", ".join(f"{k} {v:.2f}" for k, v in c.items())


def _drain_md(d: dict[str, Any]) -> str:
    if "error" in d:
        return f"Failed: `{d['error']}`"
    r = d["results"]
    rows = []
    for cfg, rc in d.get("by_config", {"autosave-1s": r}).items():
        for key, label in (
            ("mosquitto_sub", "`mosquitto_sub -c -q 1` (baseline)"),
            ("paho", "bare paho 2.x, manual ack (baseline)"),
            ("backend", "**backend** (`python -m backend`, ingest → SQLite)"),
            ("prototype", "single-threaded ingest prototype (bench/, not product)"),
        ):
            x = rc.get(key)
            if not x:
                continue
            rows.append(
                [
                    cfg,
                    label,
                    f"{x['count']:,}",
                    _n(x["rate"]),
                    _r(_ratio(x["rate"], rc["paho"]["rate"])),
                    _r(_ratio(x["rate"], rc["mosquitto_sub"]["rate"])),
                    _cores(x.get("cpu_cores")),
                ]
            )
    b = r["backend"]
    q = d.get("queueing", {})
    text = [
        f"{d['n']:,} valid envelopes (mean {d['payload_bytes_mean']:.0f} bytes) from "
        f"{d['devices']} device clients (the first device of each kind, own credentials), in the "
        "order the street produces them, queued at QoS 1 for the consumer's persistent session "
        "while it was away; then the consumer starts and drains. Each consumer gets its own "
        "identical queue. Rates are steady-state: first stored (or received) message to the last "
        "(the backend's: first `/health` poll with `stored > 0` to `stored = N`, polled every "
        f"0.1 s). The backend needed {b['wall_s']:.1f} s from process start "
        f"({_n(b['rate_incl_startup'])} msg/s including start-up); it stored "
        f"{b['count']:,} rows, {b['duplicates']} duplicates, {b['dead_lettered']} dead letters.",
        "",
        "Each queue is drained twice over: with the broker's autosave once a second "
        "(`autosave_on_changes false`, `autosave_interval 1`: the broker is not the bottleneck, "
        "so the consumers' own speeds show; the headline) and with the shipped config (what the "
        "product gets today: the broker rewrites its persistence file as the queue shrinks and "
        "holds every consumer back).",
        "",
        _table(
            [
                "broker config",
                "consumer",
                "messages",
                "msg/s",
                "vs paho",
                "vs mosquitto_sub",
                "CPU (cores, average)",
            ],
            rows,
        ),
        "",
        "How the queue was filled: the shipped `mosquitto.conf` (`autosave_on_changes true`, "
        "`autosave_interval 1`) rewrites the whole persistence file after every queued message. "
        f"Queueing the first {q.get('n', 0):,} messages for an offline session ran at "
        f"**{_n(q.get('shipped'))} msg/s** with the shipped config against "
        f"{_n(q.get('prefill_config'))} msg/s with `autosave_on_changes false` "
        f"({_r(_ratio(q.get('shipped'), q.get('prefill_config')))}), and it slows further as "
        "the queue grows (each save writes the whole queue). So the queues were filled with "
        "`autosave_on_changes false`, the broker stopped with SIGTERM (which saves) and "
        "restarted with the shipped config: every drain above ran on the shipped config.",
    ]
    if d.get("profile", {}).get("text"):
        text += [
            "",
            f"Profile of the backend during a separate drain of {d['profile']['n']:,} "
            f"(under py-spy it drained {_n(d['profile']['rate_under_profiler'])} msg/s):",
            "",
            "```",
            d["profile"]["text"],
            "```",
        ]
    return "\n".join(text)


def _live_rows(sw: dict[str, Any]) -> list[list[str]]:
    rows = []
    for label, s in (
        [("probe", x) for x in sw.get("steps", [])]
        + [("confirm", x) for x in sw.get("confirms", [])]
        + ([("latency (half rate)", sw["latency"])] if "latency" in sw else [])
    ):
        rows.append(
            [
                label,
                _n(s["rate"]),
                f"{s['seconds']:.0f}",
                _n(s["offered_rate"]),
                _n(s["stored_rate"]),
                f"{s['lost']:,}",
                f"{s['backlog_at_stop']:,}",
                _n(s["p50_ms"]),
                _n(s["p99_ms"]),
                _n(s["max_ms"]),
                "yes" if s["sustained"] else "no",
                _cores(s.get("cpu_cores")),
            ]
        )
    for key in ("baseline_half", "baseline_full"):
        s = sw.get(key)
        if s:
            rows.append(
                [
                    "baseline: bare subscriber",
                    _n(s["rate"]),
                    f"{s['seconds']:.0f}",
                    _n(s["offered_rate"]),
                    _n(s["received_rate"]),
                    f"{s['lost']:,}",
                    "–",
                    _n(s["p50_ms"]),
                    _n(s["p99_ms"]),
                    _n(s["max_ms"]),
                    "–",
                    _cores(s.get("cpu_cores")),
                ]
            )
    return rows


def _live_md(lv: dict[str, Any]) -> str:
    if "error" in lv:
        return f"Failed: `{lv['error']}`"
    text = [
        "The load: the fleet's own device sessions (`devices/session.py`, one paho client and "
        "one credential per device, all on one `MqttLoop`, connected in waves as FleetRunner "
        "does), publishing the street's own mix of emissions (`devices/street.py`: events, "
        "telemetry and journeys of every kind, about half telemetry) at a fixed total rate "
        "(`bench/live_driver.py`); each envelope's `ts` is the wall-clock instant of publishing. "
        "The backend is the real `python -m backend` on SQLite with the scaled fleet "
        "provisioned.",
        "",
        "Lost: the event ids the driver sent against the ids found in the `event` table (after "
        "up to 30-60 s of grace). Sustained: the driver offered ≥ 97 % of the rate, nothing was "
        "lost, and when the load stopped the store was at most 1 s of traffic behind.",
        "",
        "Latency (publish → commit): an observer thread in the benchmark process polls the "
        "backend's SQLite file read-only (WAL) every 10 ms for rows with a higher `id` and "
        "notes when each event id first became visible; latency = that instant − the envelope's "
        "`ts`. This adds nothing to the backend, measures what a reader can see (a committed "
        "row), and overstates the commit time by at most one poll interval plus one query "
        "(≈ 5 ms on average). The SSE stream (`GET /stream`) was not used: it carries only the "
        "events channel (not telemetry), drops the oldest items for a slow client, and adds the "
        "API's own event-loop and HTTP delays to what is measured. The baseline replaces the "
        "backend with a bare paho subscriber (manual ack, nothing else) on a fresh broker of the "
        "same config, timestamping arrival.",
    ]
    for name, sw in lv.items():
        if not isinstance(sw, dict) or "steps" not in sw:
            continue
        ov = ", ".join(f"`{k} {v}`" for k, v in sw.get("overrides", {}).items()) or "as shipped"
        text += [
            "",
            f"**Broker config: {name}** ({ov}); {sw['devices']:,} devices; sustainable "
            f"rate **{live_rate(sw)}**.",
            "",
            _table(
                [
                    "run",
                    "offered ev/s",
                    "s",
                    "achieved",
                    "stored/s",
                    "lost",
                    "behind at stop",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "sustained",
                    "CPU (cores)",
                ],
                _live_rows(sw),
            ),
        ]
    prof = lv.get("profile", {})
    if prof.get("text"):
        text += [
            "",
            f"Profile of the backend during a separate {prof['seconds']:.0f} s step at "
            f"{prof['rate']:,.0f} ev/s with {prof['devices']:,} devices (broker "
            f"autosave-1s, so the backend is the limit; stored {_n(prof['stored_rate'])}/s "
            "under the profiler):",
            "",
            "```",
            prof["text"],
            "```",
        ]
    return "\n".join(text)


def _sim_md(sim: dict[str, Any]) -> str:
    if "error" in sim:
        return f"Failed: `{sim['error']}`"
    rows = []
    for key, label in (
        ("bare", "bare paho (baseline)"),
        ("fleet", f"FleetRunner x{sim['busy_speed']:g}"),
        ("realtime", "FleetRunner x1 (real time)"),
    ):
        for r in sim.get(key, []):
            bare = _sim_at(sim, "bare", r["devices"])
            rows.append(
                [
                    label,
                    f"{r['devices']:,}",
                    f"{r['connected_at_end']:,}",
                    _n(r.get("broker_clients_connected")),
                    f"{r['connect_s']:.1f}",
                    _n(r["msgs_per_s"]),
                    f"{r['cpu_cores']:.3f}",
                    f"{r['rss_delta_mb']:.0f}",
                    f"{r['kb_per_device']:.1f}",
                    _r(_ratio(r["rss_delta_mb"], bare.get("rss_delta_mb"))),
                    f"{r['broker_cpu_cores']:.2f}",
                ]
            )
    return "\n".join(
        [
            f"Each size is a fresh Mosquitto (shipped config) and a fresh worker process "
            "(`bench/sim_worker.py`) running the product's `FleetRunner` on `Fleet.scaled(n)` "
            "(the default mix), with a credential per device (`adapters.credentials.generate`) and "
            "`RLIMIT_NOFILE` raised for the worker and the broker. The simulated clock starts on a "
            f"Monday 08:00 in Chongqing. x{sim['busy_speed']:g} ({sim['busy_speed']:g} simulated "
            "seconds per real second) makes the street publish about one message per device per "
            "second, the load FACTS.md measured the loop with; x1 is the street in real time. "
            "CPU and publish rate are averaged over "
            f"{sim['hold_s']:.0f} s after all devices are online; memory is the worker's RSS minus "
            "its RSS after the imports, divided by devices (so it includes the fleet file, the "
            "credentials, behaviours, sessions, paho clients). Baseline: the same number of bare "
            "paho clients on the same `MqttLoop`, connected and idle. `broker` counts include the "
            "benchmark's own `$SYS` watcher.",
            "",
            _table(
                [
                    "simulator",
                    "devices",
                    "connected at end",
                    "broker counts",
                    "connect s",
                    "msg/s",
                    "CPU cores",
                    "RSS Δ MB",
                    "kB/device",
                    "RSS vs bare",
                    "broker CPU",
                ],
                rows,
            ),
        ]
        + (
            [
                "",
                "Largest allocations (tracemalloc) of FleetRunner with "
                f"{sim['memory']['devices']:,} devices connected:",
                "",
                "```",
                sim["memory"]["text"],
                "```",
            ]
            if sim.get("memory", {}).get("text")
            else []
        )
    )


def _emb_md(emb: dict[str, Any]) -> str:
    if "error" in emb:
        return f"Failed: `{emb['error']}`"
    rows = []
    for name, b in emb["brokers"].items():
        for s in b.get("steps", []):
            rows.append(
                [
                    name,
                    _n(s["rate"]),
                    _n(s["received_rate"]),
                    f"{s['lost']:,}",
                    _n(s["p50_ms"], ".1f"),
                    _n(s["p99_ms"], ".1f"),
                    "yes" if s["sustained"] else "no",
                    _n(_get(s, "cpu_cores", "broker"), ".2f"),
                ]
            )
        bu = b.get("burst")
        if bu:
            rows.append(
                [
                    name,
                    f"burst {bu['sent']:,}",
                    _n(bu["received_rate"]),
                    f"{bu['lost']:,}",
                    _n(bu["p50_ms"], ".0f"),
                    _n(bu["p99_ms"], ".0f"),
                    "–",
                    _n(_get(bu, "cpu_cores", "broker"), ".2f"),
                ]
            )
    return "\n".join(
        [
            "One device client publishes valid envelopes at QoS 1 (in-flight window 100) at a "
            f"fixed rate for {emb['seconds']:.0f} s, one subscriber (user `backend`, QoS 1) "
            "receives them "
            "(`bench/rtt_worker.py`, MQTT 3.1.1, both in one process); latency is publish → "
            "arrival. Sustained: nothing lost, ≥ 97 % of the rate offered, p99 ≤ 1 s. The burst "
            "publishes as fast as one paho client can and gives the ceiling. The same worker "
            "against Mosquitto (shipped config, and with autosave once a second) is the baseline.",
            "",
            _table(
                [
                    "broker",
                    "offered msg/s",
                    "received msg/s",
                    "lost",
                    "p50 ms",
                    "p99 ms",
                    "sustained",
                    "broker CPU",
                ],
                rows,
            ),
        ]
    )


def _api_md(api: dict[str, Any]) -> str:
    if "error" in api:
        return f"Failed: `{api['error']}`"
    rows = []
    for label, r in api["results"].items():
        params = "&".join(f"{k}={v}" for k, v in r["params"].items())
        rows.append(
            [
                label,
                f"`{r['path']}{'?' + params if params else ''}`",
                str(r["requests"]),
                _n(r["rows_per_request"], ".0f"),
                _n(r["p50_ms"], ".1f"),
                _n(r["p95_ms"], ".1f"),
                _n(r["p99_ms"], ".1f"),
                _n(r["page1_p95_ms"], ".1f"),
                _n(r["deeper_p95_ms"], ".1f"),
                _r(r.get("ratio_to_health", float("nan"))),
                "yes" if r["p95_ms"] < TARGET_P95_MS else "**no**",
            ]
        )
    load = api["load"]
    text = [
        f"{api['rows']:,} events of {api['devices']} devices (the default mix scaled, ~half "
        f"telemetry) spread over {load['days']:.0f} days up to now, bulk-loaded with SQLAlchemy "
        "Core `insert()` executemany in chunks of 10,000 into the schema of `backend.db.init_db` "
        f"(all indexes in place): {_n(load['rows_per_s'])} rows/s ({load['load_s']:.0f} s); "
        f"`stat_hourly` filled from the same rows ({load['stat_rows']:,} rows, counted with "
        "each kind's `StatSpec.counts`). Then the real backend serves them; one `httpx.Client` "
        f"(keep-alive) sends up to {api['rounds']} rounds per query after 5 warm-up rounds, each "
        "round following `next_cursor` for up to 3 pages of 100. Percentiles over all pages; "
        "baseline `GET /health` (routing, JSON, one `SELECT 1`).",
        "",
        _table(
            [
                "query",
                "request",
                "requests",
                "rows/page",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "page 1 p95",
                "pages 2-3 p95",
                "p95 vs /health",
                f"< {TARGET_P95_MS:.0f} ms",
            ],
            rows,
        ),
        "",
        "SQLite's plans for the listing query (`EXPLAIN QUERY PLAN`, newest first, 100 rows):",
        "",
    ]
    text += [f"- {k}: `{v}`" for k, v in api.get("plans", {}).items()]
    for label, prof in (api.get("profiles") or {}).items():
        if prof:
            text += [
                "",
                f"Profile of the backend while serving `{label}` in a loop:",
                "",
                "```",
                prof,
                "```",
            ]
    return "\n".join(text)


def markdown(res: dict[str, Any], png_name: str) -> str:
    m = res["machine"]
    pk = m.get("packages", {})
    t = res.get("timings", {})
    heads = headlines(res)
    parts = [
        "# Benchmarks",
        "",
        "Performance and scale-out of Lijia Street on one small machine: simulated devices → "
        "Mosquitto → backend (ingest, SQLite) → API. These are not tests: they run by their own "
        "command, start real processes on free local ports, and print numbers. Every figure "
        "stands next to a baseline measured in the same run, as a ratio. What these figures "
        "mean for running the street past one machine (a clustered broker, PostgreSQL, "
        "replicas per broker): [scaling.md](scaling.md).",
        "",
        f"Run: {m['date']}, {'quick (smoke) mode' if res.get('quick') else 'full mode'}, "
        f"{t.get('total', 0) / 60:.1f} min in all. Command (from a clone, after "
        "`bash scripts/up.sh`-style install; needs Debian's `mosquitto` and "
        "`mosquitto-clients`):",
        "",
        "```",
        "bash bench/run.sh            # = .venv/bin/python -m bench   (full, writes this file)",
        "bash bench/run.sh --quick    # smoke run, a few minutes, writes to a temp folder",
        "bash bench/run.sh --only drain,api",
        "```",
        "",
        f"This run: `{res['command']}`.",
        "",
        "Machine:",
        "",
        _table(
            ["what", "value"],
            [
                ["CPU", f"{m['cpu']} ({m['nproc']} cores)"],
                ["memory", f"{m['memory_gib']} GiB"],
                ["kernel", m["kernel"]],
                ["Python", m["python"]],
                ["Mosquitto", m["mosquitto"]],
                ["SQLite", m["sqlite"]],
                ["packages", ", ".join(f"{k} {v}" for k, v in pk.items())],
                ["commit", m["git"]],
                ["RLIMIT_NOFILE", str(m["nofile"])],
                ["time per benchmark", ", ".join(f"{k} {v:.0f} s" for k, v in t.items())],
                [
                    "CPU used by other processes during each benchmark (cores, average of 2)",
                    ", ".join(
                        f"{k} {v.get('other_cores', float('nan')):.2f}"
                        for k, v in res.get("load", {}).items()
                    )
                    or "–",
                ],
            ],
        ),
        "",
        "Other engineers' test suites ran on the same two cores during parts of this run; the "
        "last row says how much CPU they took during each benchmark (system-wide busy cores "
        "minus the benchmark's own process tree). Figures from a benchmark with a high value "
        "there are pessimistic.",
        "",
        f"![Benchmarks chart]({png_name})",
        "",
        "## Results against the targets",
        "",
        _table(
            ["measure", "this run", "baseline (same run)", "ratio", "target", ""],
            [
                [h["what"], h["value"], h["baseline"], h["ratio"], h["target"], _ok(h["met"])]
                for h in heads
            ],
        ),
        "",
        ANALYSIS_MARKER,
        "",
        "## 1. Ingest drain",
        "",
        _drain_md(res.get("drain", {"error": "not run"})),
        "",
        "## 2. Live end to end",
        "",
        _live_md(res.get("live", {"error": "not run"})),
        "",
        "## 3. The simulator",
        "",
        _sim_md(res.get("simulator", {"error": "not run"})),
        "",
        "## 4. The embedded broker",
        "",
        _emb_md(res.get("embedded", {"error": "not run"})),
        "",
        "## 5. The API at 1,000,000 events",
        "",
        _api_md(res.get("api", {"error": "not run"})),
        "",
    ]
    from bench.analysis import analysis

    return "\n".join(parts).replace(ANALYSIS_MARKER, analysis(res))


ANALYSIS_MARKER = "<!-- analysis -->"


# -- chart -------------------------------------------------------------------------------------
def chart(res: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    fig.suptitle(
        f"Lijia Street benchmarks — {res['machine']['date']}, "
        f"{res['machine']['nproc']} cores {res['machine']['cpu']}"
        + (" (quick)" if res.get("quick") else ""),
        fontsize=12,
    )

    ax = axes[0][0]
    d = res.get("drain", {})
    if "results" in d:
        keys = ["mosquitto_sub", "paho", "backend", "prototype"]
        labels = ["mosquitto_sub", "bare paho", "backend", "1-thread\nprototype"]
        configs = d.get("by_config", {"autosave-1s": d["results"]})
        width = 0.8 / len(configs)
        for j, ((cfg, rc), color) in enumerate(
            zip(configs.items(), ("#1f77b4", "#d62728"), strict=False)
        ):
            xs = [i + (j - (len(configs) - 1) / 2) * width for i in range(len(keys))]
            vals = [_get(rc, k, "rate", default=0.0) for k in keys]
            bars = ax.bar(xs, vals, width, color=color, label=f"broker {cfg}")
            ax.bar_label(bars, labels=[f"{v:,.0f}" if v else "" for v in vals], fontsize=7)
        ax.set_xticks(range(len(keys)), labels)
        ax.axhline(0.6 * d["results"]["paho"]["rate"], ls="--", c="k", lw=1)
        ax.text(
            -0.4,
            0.6 * d["results"]["paho"]["rate"],
            "target 0.6× paho (autosave-1s)",
            va="bottom",
            fontsize=8,
        )
        ax.legend(fontsize=8)
    ax.set_title(f"1. Drain of a queued session ({d.get('n', 0):,} msgs)")
    ax.set_ylabel("messages/s")

    lv = res.get("live", {})
    ax, ax2 = axes[0][1], axes[0][2]
    for (name, sw), color in zip(
        ((k, v) for k, v in lv.items() if isinstance(v, dict) and "steps" in v),
        ("#d62728", "#1f77b4"),
        strict=False,
    ):
        runs = sorted(sw["steps"], key=lambda s: s["rate"])
        extra = sw.get("confirms", []) + ([sw["latency"]] if "latency" in sw else [])
        ax.plot(
            [s["rate"] for s in runs],
            [s["stored_rate"] for s in runs],
            "o-",
            c=color,
            label=f"backend, broker {name} (probes)",
        )
        ax.plot(
            [s["rate"] for s in extra],
            [s["stored_rate"] for s in extra],
            "D",
            c=color,
            mfc="none",
            label=f"backend, {name}: 60 s / half-rate runs",
        )
        ax2.plot(
            [s["rate"] for s in runs],
            [max(s["p99_ms"], 0.1) for s in runs],
            "o-",
            c=color,
            label=f"backend p99, {name} (probes)",
        )
        ax2.plot(
            [s["rate"] for s in extra],
            [max(s["p99_ms"], 0.1) for s in extra],
            "D",
            c=color,
            mfc="none",
            label=f"backend p99, {name}: 60 s / half-rate runs",
        )
        bl = [sw[k] for k in ("baseline_half", "baseline_full") if k in sw]
        ax2.plot(
            [s["rate"] for s in bl],
            [max(s["p99_ms"], 0.1) for s in bl],
            "s--",
            c=color,
            alpha=0.6,
            label=f"bare subscriber p99, {name}",
        )
    top = max(
        [s["rate"] for sw in lv.values() if isinstance(sw, dict) for s in sw.get("steps", [])]
        or [TARGET_RATE]
    )
    ax.plot([0, top], [0, top], c="#888", lw=0.8, ls=":", label="stored = offered")
    ax.axvline(TARGET_RATE, ls="--", c="k", lw=1)
    ax.set_title("2. Live: stored vs offered (SQLite)")
    ax.set_xlabel("offered events/s")
    ax.set_ylabel("stored events/s (steady)")
    ax.legend(fontsize=8)
    ax2.set_yscale("log")
    ax2.axhline(TARGET_P99_MS, ls="--", c="k", lw=1)
    ax2.set_title("2. Live: publish→commit p99")
    ax2.set_xlabel("offered events/s")
    ax2.set_ylabel("p99 latency, ms (log)")
    ax2.legend(fontsize=8)

    ax = axes[1][0]
    sim = res.get("simulator", {})
    if "fleet" in sim:
        for key, style, label in (
            ("fleet", "o-", f"FleetRunner x{sim['busy_speed']:g}"),
            ("bare", "s--", "bare paho"),
        ):
            rs = sim.get(key, [])
            ax.plot(
                [r["devices"] for r in rs],
                [r["rss_delta_mb"] for r in rs],
                style,
                c="#2ca02c",
                label=f"{label}: MB",
            )
        ax.axhline(TARGET_MB, ls="--", c="#2ca02c", lw=1)
        axc = ax.twinx()
        for key, style in (("fleet", "o-"), ("bare", "s--")):
            rs = sim.get(key, [])
            axc.plot(
                [r["devices"] for r in rs],
                [r["cpu_cores"] for r in rs],
                style,
                c="#9467bd",
                label=f"{key}: cores",
            )
        axc.axhline(TARGET_CORES, ls="--", c="#9467bd", lw=1)
        axc.set_ylabel("CPU cores", color="#9467bd")
        ax.axvline(TARGET_DEVICES, ls=":", c="k", lw=1)
        ax.legend(fontsize=8, loc="upper left")
        axc.legend(fontsize=8, loc="lower right")
    ax.set_title("3. Simulator: memory and CPU")
    ax.set_xlabel("devices")
    ax.set_ylabel("RSS Δ MB", color="#2ca02c")

    ax = axes[1][1]
    emb = res.get("embedded", {})
    for (name, b), color in zip(
        emb.get("brokers", {}).items(), ("#ff7f0e", "#d62728", "#1f77b4"), strict=False
    ):
        st = b.get("steps", [])
        ax.plot(
            [s["rate"] for s in st],
            [max(s["p99_ms"], 0.1) for s in st],
            "o-",
            c=color,
            label=f"{name} (ceiling {_n(_get(b, 'burst', 'received_rate'))}/s)",
        )
    ax.set_yscale("log")
    ax.set_title("4. Publish→subscribe p99, one publisher")
    ax.set_xlabel("offered msg/s")
    ax.set_ylabel("p99 ms (log)")
    ax.legend(fontsize=8)

    ax = axes[1][2]
    api = res.get("api", {})
    if "results" in api:
        items = list(api["results"].items())
        vals = [r["p95_ms"] for _, r in items]
        ax.barh(
            [lbl.replace("events, ", "ev: ") for lbl, _ in items],
            vals,
            color=[
                "#999"
                if lbl.startswith("health")
                else ("#d62728" if v >= TARGET_P95_MS else "#2ca02c")
                for (lbl, _), v in zip(items, vals, strict=True)
            ],
        )
        ax.axvline(TARGET_P95_MS, ls="--", c="k", lw=1)
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=8)
    ax.set_title(f"5. API p95 at {api.get('rows', 0):,} events")
    ax.set_xlabel("p95 ms")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
