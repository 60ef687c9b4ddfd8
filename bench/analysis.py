"""The "what limits it" section of docs/benchmarks.md: read from this run's numbers, with the
explanations found by profiling (py-spy, tracemalloc, EXPLAIN QUERY PLAN) while building the
benchmarks. Statements that depend on a number are only made when this run's numbers show it."""

from __future__ import annotations

from typing import Any

from bench.api import TARGET_P95_MS
from bench.live import TARGET_P99_MS, TARGET_RATE
from bench.report import _n, _ratio, live_rate
from bench.simulator import TARGET_CORES, TARGET_DEVICES, TARGET_MB


def _g(d: Any, *path: Any, default: Any = float("nan")) -> Any:
    for p in path:
        if (isinstance(d, dict) and p in d) or (
            isinstance(d, list) and isinstance(p, int) and -len(d) <= p < len(d)
        ):
            d = d[p]
        else:
            return default
    return d


def _cpu_at(emb: dict[str, Any], broker: str, rate: int) -> float:
    for s in _g(emb, broker, "steps", default=[]):
        if s["rate"] == rate:
            return float(_g(s, "cpu_cores", "broker"))
    return float("nan")


def _per_message(r: dict[str, Any]) -> str:
    """CPU per message of the bare paho drain and of the backend, from this run's samples."""
    paho = _g(r, "paho", "cpu_cores", "consumer") / _g(r, "paho", "rate") * 1e6
    backend = _g(r, "backend", "cpu_cores", "backend") / _g(r, "backend", "rate") * 1e6
    if not (paho == paho and backend == backend):  # NaN: a consumer failed
        return ""
    return (
        f"In this run bare paho used {paho:.0f} µs of CPU per message, the backend "
        f"{backend:.0f} µs ({backend / paho:.1f}×)."
    )


def _top_file(text: str | None) -> tuple[str, float, float]:
    """(file, MB, total MB) of the largest entry of the tracemalloc text of sim_worker."""
    if not text:
        return "", float("nan"), float("nan")
    lines = text.splitlines()
    try:
        total = float(lines[0].split("traced ", 1)[1].split(" MB", 1)[0])
        mb, name = lines[1].split("MB", 1)
        return name.strip(), float(mb), total
    except (IndexError, ValueError):
        return "", float("nan"), float("nan")


def analysis(res: dict[str, Any]) -> str:
    out = ["## What limits it (targets missed, by how much, and why)", ""]
    others = [v.get("other_cores", 0.0) for v in res.get("load", {}).values() if v]
    if others and max(others) >= 0.3:
        out += [
            f"Read with care: other processes used {min(others):.1f}-{max(others):.1f} of the "
            "machine's 2 cores during this run (table above), so absolute rates are pessimistic "
            "and latencies inflated. Each baseline ran under the same conditions, so the ratios "
            "are the sturdier figures; the causes below were found by profiling and do not "
            "depend on the load.",
            "",
        ]
    lv = res.get("live", {})
    sh, var = lv.get("shipped", {}), lv.get("autosave-1s", {})
    emb = res.get("embedded", {}).get("brokers", {})
    d = res.get("drain", {})
    q = d.get("queueing", {})
    sh_rate = sh.get("sustainable_rate", float("nan"))
    var_rate = var.get("sustainable_rate", float("nan"))
    m_ship = _g(emb, "mosquitto", "sustainable_rate")
    m_1s = _g(emb, "mosquitto-autosave-1s", "sustainable_rate")

    # -- the broker's persistence ---------------------------------------------------------------
    capped = (
        _ratio(sh_rate, var_rate) < 0.8
        or _ratio(m_ship, m_1s) < 0.8
        or _ratio(q.get("shipped"), q.get("prefill_config")) < 0.5
    )
    out += [
        (
            "**1. The broker's persistence settings cap everything behind it.** "
            if capped
            else "**1. The broker's persistence settings** did not limit this run's live rate, "
            "but: "
        )
        + "`broker_config/mosquitto.conf` ships `autosave_on_changes true` with "
        "`autosave_interval 1`: Mosquitto then writes its whole in-memory database to disk after "
        "every change, and every QoS-1 message it queues or holds in flight for a subscriber is a "
        "change. In this run:",
        "",
        f"- one publisher → one subscriber: **{_n(m_ship)} msg/s** sustained with the shipped "
        f"config (burst ceiling {_n(_g(emb, 'mosquitto', 'burst', 'received_rate'))} msg/s), "
        f"against ≥ {_n(m_1s)} msg/s (ceiling "
        f"{_n(_g(emb, 'mosquitto-autosave-1s', 'burst', 'received_rate'))} msg/s) with "
        "`autosave_on_changes false` + `autosave_interval 1` (a save once a second);",
        f"- the live pipeline: **{live_rate(sh)}** sustained with the shipped config, "
        f"{live_rate(var)} with the once-a-second save; even with the backend replaced by a "
        "bare subscriber the shipped broker delivered "
        f"{_n(_g(sh, 'baseline_full', 'received_rate'))}"
        f"/s of {_n(_g(sh, 'baseline_full', 'rate'))} offered with p99 "
        f"{_n(_g(sh, 'baseline_full', 'p99_ms'))} ms (once-a-second save: "
        f"{_n(_g(var, 'baseline_full', 'received_rate'))}/s of "
        f"{_n(_g(var, 'baseline_full', 'rate'))}, "
        f"p99 {_n(_g(var, 'baseline_full', 'p99_ms'))} ms);",
        f"- queueing for the backend while it is away (the case `max_queued_messages 500000` is "
        f"sized for): {_n(q.get('shipped'))} msg/s for the first {_n(q.get('n'))} messages, "
        f"falling as the queue grows because each save writes the whole queue (O(n²)); "
        f"{_n(q.get('prefill_config'))} msg/s without it. At the street's 5,000 ev/s target an "
        "outage would back up into the devices' own paho queues (10,000 messages each) instead "
        "of the broker;",
        f"- draining a {_n(d.get('n'))}-message queue: `mosquitto_sub` got "
        f"{_n(_g(d, 'by_config', 'shipped', 'mosquitto_sub', 'rate'))} msg/s with the shipped "
        f"config against {_n(_g(d, 'by_config', 'autosave-1s', 'mosquitto_sub', 'rate'))} with "
        "the once-a-second save, bare paho "
        f"{_n(_g(d, 'by_config', 'shipped', 'paho', 'rate'))} against "
        f"{_n(_g(d, 'by_config', 'autosave-1s', 'paho', 'rate'))}.",
        "",
        "Where the time goes: at the same 1,000 msg/s the shipped broker used "
        f"{_n(_cpu_at(emb, 'mosquitto', 1000), '.2f')} cores against "
        f"{_n(_cpu_at(emb, 'mosquitto-autosave-1s', 1000), '.2f')} with the once-a-second save: "
        "it is busy serialising and writing its database, and waits on the disk in between. "
        "FACTS.md chose `autosave_on_changes` so that a SIGKILLed broker loses nothing; the price "
        "is this ceiling. Recommendation (product, `broker_config/mosquitto.conf`): "
        "`autosave_on_changes false` with `autosave_interval 1` (a graceful stop still saves "
        "everything; a SIGKILL or power loss can lose up to about one second of acknowledged "
        "messages — say so in the docs), or keep `autosave_on_changes true` with a count such as "
        "`autosave_interval 5000` (bounded loss by count; not measured here)."
        + (
            " The live target cannot be met with the shipped setting whatever the backend does."
            if capped
            else ""
        ),
        "",
    ]

    # -- ingest ----------------------------------------------------------------------------------
    r = d.get("results", {})
    b_rate, p_rate = _g(r, "backend", "rate"), _g(r, "paho", "rate")
    proto = _g(r, "prototype", "rate")
    sh_ = _g(d, "profile", "shares", default={})

    def pc(f: str) -> str:
        return _n(sh_.get(f), ".0f") + " %"

    out += [
        f"**2. Ingest: {_n(b_rate)} msg/s = {_ratio(b_rate, p_rate):.2f}× the bare paho drain "
        f"({_n(p_rate)} msg/s); target 0.6× "
        f"({_n(0.6 * p_rate if p_rate == p_rate else float('nan'))}"
        " msg/s).** Where the backend's CPU goes while draining (py-spy samples of this run, "
        f"section 1; shares of all samples of the process): `write_batch` {pc('write_batch')} "
        f"(of which `AlarmEngine.observe` {pc('AlarmEngine.observe')}, its `_telemetry` "
        f"{pc('AlarmEngine._telemetry')}, `_time_passes` {pc('AlarmEngine._time_passes')}; "
        f"`_insert_ignore` {pc('_insert_ignore')}; `classify` {pc('classify')}; "
        f"`_count_stats` {pc('_count_stats')}), the paho network thread `Client._loop` "
        f"{pc('Client._loop')}, acks `Client.ack` {pc('Client.ack')}. A wall-clock profile "
        "taken while building the first version of this benchmark (`py-spy record --idle "
        "--threads`) showed the `ingest-writer` thread busy nearly all the time, so the drain "
        "runs at the writer's speed while the paho network thread keeps the hand-off queue full.",
        "",
        "What issue 8 changed in the writer (first full run: 1,847 msg/s = 0.14×, of which "
        "`AlarmEngine.observe` 34 % of the samples): the alarm rules are evaluated per batch "
        "against the batch's open alarms and rule state, read with one query each "
        "(`_BatchView` in `backend/alarms.py`), so a telemetry message whose condition does not "
        "hold costs no statement (it cost a `SELECT`, a `DELETE` and another `SELECT` per "
        "rule), and repeated occurrences and rule state are written with one executemany per "
        "batch; only the rules that can act on a message's type are tried; the twins are one "
        "executemany per set of changed columns; the replay check looks `(device_id, seq)` up "
        "on its index (SQLite planned the former `(device_id, seq) IN (…)` as `SCAN event`, a "
        "full scan per batch growing with the table); burst rules count their window through "
        "`ix_event_device_id_type_ts` (migration 0004) instead of all of the device's rows; the "
        "lone-surrogate check re-encodes a message only when it has a `\\u` escape.",
        "",
        "Why 0.6× is not reached this way: the ratio compares CPU per message. "
        f"{_per_message(r)} The backend does all of paho's work (its network thread is that "
        f"baseline: `Client._loop` {pc('Client._loop')} of the samples) and then parses and "
        "validates every message (`classify`: JSON and two pydantic validations), inserts it "
        "with SQLAlchemy (`_insert_ignore`: per-row parameter processing of the datetime and "
        "JSON columns, then SQLite's insert into the table and its indexes) and commits, all "
        "under one interpreter lock with the network thread. 0.6× would leave the whole writer "
        "two thirds of paho's own per-message cost.",
        "",
        f"The single-threaded prototype (`bench/ingest_prototype.py`: the same `write_batch`, "
        f"alarms included, ack after commit, but paho driven from the writing thread and the "
        f"batch's PUBACKs flushed together) drained {_n(proto)} msg/s "
        f"({_ratio(proto, b_rate):.1f}× the backend): "
        + (
            "removing the thread hand-offs would help, at the price of not reading the socket "
            "while a batch commits."
            if _ratio(proto, b_rate) >= 1.2
            else "the thread hand-offs are not what limits the drain."
        ),
        "",
        "What is left (in order of effect):",
        "",
        "1. Scale out rather than up: a replica per core, sharing the ingest through the shared "
        "subscription on PostgreSQL (`tests/test_scale_out.py`); sizing in docs/scaling.md.",
        "2. `contracts/validation.py`: validate the envelope straight from the payload "
        "(`Envelope.model_validate_json`, about 7 µs a message against 15 µs for `json.loads` "
        "plus `model_validate`, measured while making these changes), keeping the present path "
        "for messages that fail, so that every refusal keeps its reason.",
        "3. `backend/ingest/persist.py` `_insert_ignore`: the rows through the driver's own "
        "executemany with parameters prepared once, instead of SQLAlchemy's per-row processing "
        "(dialect-specific code for SQLite and PostgreSQL).",
        "",
    ]

    # -- live -------------------------------------------------------------------------------------
    lat = sh.get("latency", {})
    vl = var.get("latency", {})
    out += [
        f"**3. Live end to end: {live_rate(sh)} sustained (target {TARGET_RATE:,} ev/s) and p99 "
        f"{_n(lat.get('p99_ms'))} ms at {_n(lat.get('rate'))} ev/s "
        f"({_ratio(lat.get('p99_ms'), TARGET_P99_MS):.1f}× the {TARGET_P99_MS:.0f} ms target) with "
        f"the shipped broker config.** Limited first by the broker's saves (point 1), then by "
        f"ingest (point 2): with the once-a-second save the pipeline sustained "
        f"{live_rate(var)}, with p50 {_n(vl.get('p50_ms'))} ms / p99 {_n(vl.get('p99_ms'))} ms "
        f"at {_n(vl.get('rate'))} ev/s, on a machine where the simulator, Mosquitto and the "
        "backend share two cores (see the CPU columns) with other people's tests. 5,000 ev/s "
        "needs both fixes; the ingest fix is the bigger one once the broker no longer waits on "
        "the disk.",
        "",
    ]
    lp = lv.get("profile", {})
    ls = lp.get("shares", {})
    if ls:
        out += [
            f"The live rate is below the drain rate ({_n(b_rate)} msg/s from 7 devices) "
            f"because the street has {_n(sh.get('devices'))} devices and `write_batch` also does "
            "work per *device* in each batch: a twin row in the executemany, the device in the "
            "alarm view's `IN` lists and in the replay check, `_time_passes` per device, and "
            "with a few hundred devices per batch most messages are their device's only one. "
            "Profile of the backend at "
            f"{_n(lp.get('rate'))} ev/s (section 2): "
            f"`write_batch` {_n(ls.get('write_batch'), '.0f')} %"
            f", `AlarmEngine.observe` {_n(ls.get('AlarmEngine.observe'), '.0f')} % (of which "
            f"`_time_passes` {_n(ls.get('AlarmEngine._time_passes'), '.0f')} %, `_telemetry` "
            f"{_n(ls.get('AlarmEngine._telemetry'), '.0f')} %), `_insert_ignore` "
            f"{_n(ls.get('_insert_ignore'), '.0f')} %, `classify` {_n(ls.get('classify'), '.0f')} "
            "%, all SQL statements (`Connection.execute`) "
            f"{_n(ls.get('Connection.execute'), '.0f')}"
            f" %, the paho network thread {_n(ls.get('Client._loop'), '.0f')} %.",
            "",
        ]

    # -- simulator --------------------------------------------------------------------------------
    sim = res.get("simulator", {})
    at: dict[str, Any] = next(
        (x for x in sim.get("fleet", []) if x["devices"] == TARGET_DEVICES), {}
    )
    bare: dict[str, Any] = next(
        (x for x in sim.get("bare", []) if x["devices"] == TARGET_DEVICES), {}
    )
    big = _g(sim, "fleet", -1, default={})
    if at:
        mem_ok = at["rss_delta_mb"] <= TARGET_MB
        cpu_ok = at["cpu_cores"] <= TARGET_CORES
        out += [
            f"**4. Simulator: {TARGET_DEVICES:,} devices use {at['cpu_cores']:.2f} cores "
            f"({'within' if cpu_ok else 'over'} the {TARGET_CORES:g}-core target) while publishing "
            f"{at['msgs_per_s']:,.0f} msg/s at x{sim.get('busy_speed', 60):g}, and "
            f"{at['rss_delta_mb']:.0f} MB ({at['kb_per_device']:.0f} kB/device: "
            f"{_ratio(at['rss_delta_mb'], TARGET_MB):.1f}× the {TARGET_MB:.0f} MB target"
            f"{'' if mem_ok else ', missed'}).** The bare paho clients on the same loop take "
            f"{_n(bare.get('kb_per_device'), '.0f')} kB/device "
            f"({_ratio(at['rss_delta_mb'], bare.get('rss_delta_mb')):.1f}× less); the rest is the "
            "simulation's own objects per device. "
            f"{_n(big.get('connected_at_end'))} of {_n(big.get('devices'))} devices stayed "
            "connected for the hold.",
            "",
        ]
        if not mem_ok:
            top, top_mb, total_mb = _top_file(_g(sim, "memory", "text", default=None))
            out += [
                f"Where it goes (tracemalloc, section 3): of {_n(total_mb, '.0f')} MB traced for "
                f"{_n(_g(sim, 'memory', 'devices'))} devices, **{_n(top_mb, '.0f')} MB are "
                f"allocated in `{top}`**"
                + (
                    ": every book house keeps a dict of loans and heaps of return and overdue "
                    "times (20 % of its 3,000 books start on loan: ~600 loans of ~400 bytes "
                    "each); its shelf is an array of 4-byte book numbers (a list of int objects "
                    "until 2026-11-22: 14 MB of 61 MB at 1,000 devices)."
                    if "book_house" in top
                    else "."
                )
                + " Recommendations (product, `devices/`): keep the loan state compact (one "
                "tuple per loan with times as integers, no separate dict and two heaps); the "
                "school's daily entry list likewise. That brings a device near the bare paho "
                "client. "
                "Note that the baseline itself — one bare paho client per device on the same "
                "loop, "
                f"plus the fleet file and the credentials — took {_n(bare.get('rss_delta_mb'))} MB "
                f"at {TARGET_DEVICES:,} devices ({_n(bare.get('kb_per_device'), '.0f')} kB each): "
                "100 MB for 5,000 devices is below what one paho `Client` per device costs, so "
                "the memory target needs a lighter per-device MQTT client as well (paho keeps "
                "per-client buffers, locks, callbacks and a topic matcher).",
                "",
            ]

    # -- embedded ---------------------------------------------------------------------------------
    e = emb.get("embedded", {})
    if e:
        e_rate = e.get("sustainable_rate", 0)
        step: dict[str, Any] = next((s for s in e.get("steps", []) if s["rate"] == e_rate), {})
        nxt: dict[str, Any] = next((s for s in e.get("steps", []) if not s["sustained"]), {})
        if nxt and nxt.get("lost") and nxt.get("p99_ms", 1e9) <= 250:
            why = (
                f"at {_n(nxt.get('rate'))} msg/s {_n(nxt.get('lost'))} QoS-1 message(s) "
                "published never reached the subscriber (waited 15 s), although latency was "
                f"still low (p99 {_n(nxt.get('p99_ms'), '.0f')} ms): a delivery loss, not "
                "overload"
            )
        elif nxt:
            why = (
                f"at {_n(nxt.get('rate'))} msg/s it falls behind (received "
                f"{_n(nxt.get('received_rate'))}/s, p99 {_n(nxt.get('p99_ms'), '.0f')} ms"
                + (
                    f", {_n(nxt.get('lost'))} message(s) never delivered within 15 s"
                    if nxt.get("lost")
                    else ""
                )
                + ")"
            )
        else:
            why = "it kept up with every rate tried"
        e_ceiling = _g(e, "burst", "received_rate")
        out += [
            f"**5. The embedded broker (amqtt) sustains {_n(e_rate)} msg/s** for one publisher "
            f"and one subscriber (p99 {_n(step.get('p99_ms'), '.0f')} ms there); {why}. Its "
            f"ceiling (one publisher as fast as it can) is {_n(e_ceiling)} msg/s "
            f"({_n(_g(e, 'burst', 'lost'))} of {_n(_g(e, 'burst', 'sent'))} lost), with the "
            f"broker process at {_n(_g(e, 'burst', 'cpu_cores', 'broker'), '.2f')} cores: a "
            "pure-Python broker on one asyncio loop. Mosquitto with the once-a-second save "
            f"reached {_n(_g(emb, 'mosquitto-autosave-1s', 'burst', 'received_rate'))} msg/s "
            f"at {_n(_g(emb, 'mosquitto-autosave-1s', 'burst', 'cpu_cores', 'broker'), '.2f')} "
            f"cores, as shipped {_n(_g(emb, 'mosquitto', 'burst', 'received_rate'))} msg/s. "
            "The embedded broker is fine for the default street and demos (a few messages per "
            "second) and for the simulator at real time; it is not for load tests, and QoS-1 "
            "delivery through it is not to be relied on at high rates (amqtt 0.12 lost single "
            "messages in several runs while building this benchmark).",
            "",
        ]

    # -- api --------------------------------------------------------------------------------------
    api = res.get("api", {})
    if "results" in api:
        slow = {k: v for k, v in api["results"].items() if v["p95_ms"] >= TARGET_P95_MS}
        if not slow:
            plans = api.get("plans", {})
            worst = max(api["results"].items(), key=lambda kv: kv[1]["p95_ms"])
            out += [
                f"**6. API:** every query's p95 is under {TARGET_P95_MS:.0f} ms at "
                f"{api['rows']:,} events (slowest: `{worst[0]}`, {worst[1]['p95_ms']:.1f} ms). "
                "The type filter and `/stats` use the indexes of migration 0004: "
                f"`{plans.get('type filter')}` and `{plans.get('stats hourly')}`. Before them "
                "(full run of 2026-11-22 08:18 UTC) the type filter planned `SCAN event`, which "
                "for a rare type read most of the table for every page (p95 241.5 ms), and "
                "`/stats` read all of `stat_hourly` to keep one day (p95 53.5 ms).",
                "",
            ]
        else:
            out += [
                f"**6. API at {api['rows']:,} events:** p95 over {TARGET_P95_MS:.0f} ms for "
                + "; ".join(
                    f"`{k}` {v['p95_ms']:.0f} ms "
                    f"({_ratio(v['p95_ms'], TARGET_P95_MS):.1f}× the target)"
                    for k, v in slow.items()
                )
                + "."
            ]
            plans = api.get("plans", {})
            if any("rare type" in k or "type=" in k for k in slow):
                out += [
                    "",
                    f"A `type` filter has no index: SQLite plans `{plans.get('type filter')}` — "
                    "it walks the table newest first until it has 100 matching rows, so a rare "
                    f"type (here `{api.get('rare_type')}`) reads most of the table for every "
                    "page; the profile shows the time inside SQLite (`fetchall`/`do_execute`: "
                    "SQLite steps through the scan while rows are fetched), not in Python. "
                    "Recommendation (product, `backend/models.py` + a migration): "
                    "`Index('ix_event_channel_type_id', 'channel', 'type', 'id')` (and, if the "
                    "console filters by kind and type together, `('kind', 'type', 'id')`). "
                    "Device filters already use `ix_event_device_id_id`.",
                ]
            if any(k.startswith("stats") for k in slow):
                out += [
                    "",
                    "`/stats` spends its time in SQLite too (`do_execute`): its hourly query "
                    f"plans `{plans.get('stats hourly')}` — `stat_hourly` has no index on "
                    "`hour`, so every call reads all of it "
                    f"({_n(_g(api, 'load', 'stat_rows'))} rows for {_n(_g(api, 'load', 'days'))} "
                    f"days of {_n(api.get('devices'))} devices) to keep one day. It grows with "
                    "history: the table is kept when personal events are purged, so a year of "
                    "1,000 devices is up to tens of millions of rows. Recommendation (product): "
                    "`Index('ix_stat_hourly_hour', 'hour')` (or `('hour', 'kind', 'stat')`). "
                    "Part of this run's `/stats` time is also the other processes on the "
                    f"machine ({_n(_g(res, 'load', 'api', 'other_cores'), '.2f')} cores during "
                    "this benchmark).",
                ]
            out += [""]
    return "\n".join(out)
