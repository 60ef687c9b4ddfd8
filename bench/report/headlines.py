"""The "results against the targets" rows: one typed row per target, computed from a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.report.fmt import get, live_rate, n, ratio, sim_at, times
from bench.report.results import Api, Delivery, Drain, Embedded, Live, Results, Simulator
from bench.targets import (
    BACKEND_TARGET_RATIO,
    TARGET_CORES,
    TARGET_DEVICES,
    TARGET_MB,
    TARGET_P95_MS,
    TARGET_P99_MS,
    TARGET_RATE,
)


@dataclass(frozen=True)
class Headline:
    """One measure: this run's value, the baseline of the same run, their ratio, the target."""

    what: str
    value: str
    baseline: str
    ratio: str
    target: str
    met: bool | None  # None: nothing to meet, only documented


def _drain(d: Drain) -> list[Headline]:
    if "results" not in d:
        return []
    b, p = d["results"]["backend"], d["results"]["paho"]
    r = ratio(b["rate"], p["rate"])
    sb = get(d, "by_config", "shipped", default={})
    return [
        Headline(
            what=f"1. Drain of {d['n']:,} queued QoS-1 events, backend → SQLite (broker "
            "autosave once a second, so that the broker is not the bottleneck)",
            value=f"{n(b['rate'])} msg/s (shipped broker config: {n(get(sb, 'backend', 'rate'))})",
            baseline=f"bare paho {n(p['rate'])} msg/s; mosquitto_sub "
            f"{n(d['results']['mosquitto_sub']['rate'])} msg/s (shipped: "
            f"{n(get(sb, 'paho', 'rate'))} / {n(get(sb, 'mosquitto_sub', 'rate'))})",
            ratio=f"{times(r)} of paho (shipped: "
            f"{times(ratio(get(sb, 'backend', 'rate'), get(sb, 'paho', 'rate')))})",
            target=f"≥ {BACKEND_TARGET_RATIO:g}× paho",
            met=r >= BACKEND_TARGET_RATIO,
        )
    ]


def _live(lv: Live) -> list[Headline]:
    rows: list[Headline] = []
    shipped = lv.get("shipped", {})
    if "steps" in shipped:
        rate = shipped.get("sustainable_rate", 0)
        conf, base = shipped.get("confirm", {}), shipped.get("baseline_full", {})
        lat, bl = shipped.get("latency", {}), shipped.get("baseline_half", {})
        rows += [
            Headline(
                what=f"2. Live, {shipped['devices']:,} simulated devices → Mosquitto (shipped "
                "config) → backend → SQLite, 60 s, 0 lost",
                value=f"{live_rate(shipped)} sustained (stored "
                f"{n(conf.get('stored_rate'))}/s, lost {n(conf.get('lost'))})",
                baseline=f"bare subscriber at {n(base.get('rate'))} ev/s: received "
                f"{n(base.get('received_rate'))}/s, p99 {n(base.get('p99_ms'))} ms",
                ratio=f"{times(ratio(conf.get('stored_rate'), base.get('received_rate')))} of "
                f"the bare subscriber; {times(ratio(rate, TARGET_RATE))} of target",
                target=f"≥ {TARGET_RATE:,} ev/s",
                met=rate >= TARGET_RATE,
            ),
            Headline(
                what=f"2. Publish→commit latency at half that rate ({n(lat.get('rate'))} ev/s)",
                value=f"p50 {n(lat.get('p50_ms'))} ms, p99 {n(lat.get('p99_ms'))} ms",
                baseline=f"bare subscriber p50 {n(bl.get('p50_ms'))} ms, p99 "
                f"{n(bl.get('p99_ms'))} ms",
                ratio=f"p99 {times(ratio(lat.get('p99_ms'), bl.get('p99_ms')))} of the bare "
                "subscriber",
                target=f"p99 ≤ {TARGET_P99_MS:.0f} ms",
                met=(lat.get("p99_ms") or 1e9) <= TARGET_P99_MS and rate >= TARGET_RATE,
            ),
        ]
    var = lv.get("autosave-1s", {})
    if "steps" in var:
        lat = var.get("latency", {})
        rows.append(
            Headline(
                what="2b. Same with the broker's autosave once a second (not shipped)",
                value=f"{live_rate(var)} sustained; at {n(lat.get('rate'))} ev/s p50 "
                f"{n(lat.get('p50_ms'))} ms, p99 {n(lat.get('p99_ms'))} ms",
                baseline=f"bare subscriber p99 {n(get(var, 'baseline_half', 'p99_ms'))} ms at "
                f"{n(get(var, 'baseline_half', 'rate'))} ev/s",
                ratio=times(ratio(var.get("sustainable_rate"), shipped.get("sustainable_rate")))
                + " of shipped",
                target=f"≥ {TARGET_RATE:,} ev/s, p99 ≤ {TARGET_P99_MS:.0f} ms",
                met=(
                    var.get("sustainable_rate", 0) >= TARGET_RATE
                    and (lat.get("p99_ms") or 1e9) <= TARGET_P99_MS
                ),
            )
        )
    return rows


def _simulator(sim: Simulator) -> list[Headline]:
    if "fleet" not in sim:
        return []
    at = sim_at(sim, "fleet", TARGET_DEVICES) or get(sim, "fleet", -1, default={})
    bare = sim_at(sim, "bare", at.get("devices", 0))
    rt = get(sim, "realtime", 0, default={})
    biggest = get(sim, "fleet", -1, default={})
    what = (
        f"3. Simulator, {n(at.get('devices'))} devices at x{n(sim.get('busy_speed'))} "
        f"({n(at.get('msgs_per_s'))} msg/s)"
    )
    at_target = at.get("devices") == TARGET_DEVICES
    return [
        Headline(
            what=what + ": CPU",
            value=f"{n(at.get('cpu_cores'), '.2f')} cores (real time x1: "
            f"{n(rt.get('cpu_cores'), '.2f')})",
            baseline=f"bare paho clients, idle: {n(bare.get('cpu_cores'), '.3f')} cores",
            ratio=f"{times(ratio(at.get('cpu_cores'), TARGET_CORES))} of the target",
            target=f"≤ {TARGET_CORES:g} core",
            met=at_target and at.get("cpu_cores", 9) <= TARGET_CORES,
        ),
        Headline(
            what=what + ": memory",
            value=f"{n(at.get('rss_delta_mb'))} MB ({n(at.get('kb_per_device'), '.0f')} kB/device)",
            baseline=f"bare paho clients: {n(bare.get('rss_delta_mb'))} MB "
            f"({n(bare.get('kb_per_device'), '.0f')} kB/device)",
            ratio=f"{times(ratio(at.get('rss_delta_mb'), bare.get('rss_delta_mb')))} of bare paho",
            target=f"≤ {TARGET_MB:.0f} MB",
            met=at_target and at.get("rss_delta_mb", 1e9) <= TARGET_MB,
        ),
        Headline(
            what=f"3. {n(biggest.get('devices'))} devices held connected",
            value=f"{n(biggest.get('connected_at_end'))} connected after "
            f"{n(biggest.get('hold_s'))} s (broker counts "
            f"{n(biggest.get('broker_clients_connected'))}); connect "
            f"{n(biggest.get('connect_s'), '.1f')} s",
            baseline="bare paho: connect "
            f"{n(sim_at(sim, 'bare', biggest.get('devices', 0)).get('connect_s'), '.1f')} s",
            ratio="–",
            target="10,000 held",
            met=biggest.get("devices", 0) >= 10_000
            and biggest.get("connected_at_end", 0) >= 10_000,
        ),
    ]


def _embedded(emb: Embedded) -> list[Headline]:
    if "brokers" not in emb:
        return []
    e = emb["brokers"].get("embedded", {})
    m = emb["brokers"].get("mosquitto", {})
    m1 = emb["brokers"].get("mosquitto-autosave-1s", {})
    rate = e.get("sustainable_rate", 0)
    none: Delivery = {}
    e_step = next((s for s in e.get("steps", []) if s["rate"] == rate), none)
    ceiling, ceiling_1s = get(e, "burst", "received_rate"), get(m1, "burst", "received_rate")
    return [
        Headline(
            what="4. Embedded broker (amqtt), one publisher → one subscriber, QoS 1",
            value=f"{n(rate)} msg/s sustained, p99 {n(e_step.get('p99_ms'), '.0f')} ms there; "
            f"ceiling {n(ceiling)} msg/s",
            baseline=f"Mosquitto shipped {n(m.get('sustainable_rate'))} msg/s (ceiling "
            f"{n(get(m, 'burst', 'received_rate'))}); autosave-1s ≥ "
            f"{n(m1.get('sustainable_rate'))} (ceiling {n(ceiling_1s)})",
            ratio="ceiling " + times(ratio(ceiling, ceiling_1s)) + " of Mosquitto autosave-1s",
            target="document the ceiling",
            met=None,
        )
    ]


def _api(api: Api) -> list[Headline]:
    if "results" not in api:
        return []
    results: dict[str, Any] = api["results"]
    health = results.get("health (baseline)", {})
    rows = []
    for prefix in ("events", "stats"):
        mine = [(k, v) for k, v in results.items() if k.startswith(prefix)]
        if not mine:
            continue
        label, r = max(mine, key=lambda kv: kv[1]["p95_ms"])
        rows.append(
            Headline(
                what=f"5. API at {api['rows']:,} events: slowest {label.split(',')[0]} query "
                f"({label})",
                value=f"p95 {n(r['p95_ms'], '.1f')} ms (p50 {n(r['p50_ms'], '.1f')})",
                baseline=f"GET /health p95 {n(health.get('p95_ms'), '.1f')} ms",
                ratio=times(ratio(r["p95_ms"], health.get("p95_ms"))),
                target=f"p95 < {TARGET_P95_MS:.0f} ms",
                met=r["p95_ms"] < TARGET_P95_MS,
            )
        )
    return rows


def headlines(res: Results) -> list[Headline]:
    """Every target of this run's benchmarks, in the order of the report's sections."""
    return [
        *_drain(res.get("drain", {})),
        *_live(res.get("live", {})),
        *_simulator(res.get("simulator", {})),
        *_embedded(res.get("embedded", {})),
        *_api(res.get("api", {})),
    ]
