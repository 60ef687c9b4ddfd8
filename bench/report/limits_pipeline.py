"""Points 1-3 of "what limits it" (broker persistence, ingest, live): a paragraph per function."""

from __future__ import annotations

from typing import Any

from bench.report.fmt import NAN, get, live_rate, n, ratio
from bench.report.results import Broker, Consumer, Results
from bench.targets import BACKEND_TARGET_RATIO, TARGET_P99_MS, TARGET_RATE

# Each paragraph states only what this run's numbers show; the causes were found by profiling
# (py-spy) while building the benchmarks.
_1S = "mosquitto-autosave-1s"


def _g(d: Any, *path: Any) -> Any:
    return get(d, *path, default=NAN)


def load_caveat(res: Results) -> list[str]:
    """A warning when other processes took a noticeable share of the machine."""
    others = [v.get("other_cores", 0.0) for v in res.get("load", {}).values() if v]
    if not others or max(others) < 0.3:
        return []
    return [
        f"Read with care: other processes used {min(others):.1f}-{max(others):.1f} of the "
        "machine's 2 cores during this run (table above), so absolute rates are pessimistic "
        "and latencies inflated. Each baseline ran under the same conditions, so the ratios "
        "are the sturdier figures; the causes below were found by profiling and do not "
        "depend on the load.",
        "",
    ]


def _cpu_at(emb: dict[str, Broker], broker: str, rate: int) -> float:
    for s in get(emb, broker, "steps", default=[]):
        if s["rate"] == rate:
            return float(_g(s, "cpu_cores", "broker"))
    return NAN


def broker_capped(res: Results) -> bool:
    """Did the shipped persistence settings hold back the live rate, the broker or queueing?"""
    lv, emb = res.get("live", {}), get(res, "embedded", "brokers", default={})
    q = get(res, "drain", "queueing", default={})
    live_share = ratio(
        _g(lv, "shipped", "sustainable_rate"), _g(lv, "autosave-1s", "sustainable_rate")
    )
    broker_share = ratio(_g(emb, "mosquitto", "sustainable_rate"), _g(emb, _1S, "sustainable_rate"))
    queue_share = ratio(q.get("shipped"), q.get("prefill_config"))
    return live_share < 0.8 or broker_share < 0.8 or queue_share < 0.5


def persistence(res: Results) -> list[str]:
    """1. What the broker's save-after-every-change costs, seen from every benchmark."""
    lv, d = res.get("live", {}), res.get("drain", {})
    sh, var = lv.get("shipped", {}), lv.get("autosave-1s", {})
    emb = get(res, "embedded", "brokers", default={})
    q = d.get("queueing", {})
    capped = broker_capped(res)
    by = d.get("by_config", {})
    return [
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
        f"- one publisher → one subscriber: **{n(_g(emb, 'mosquitto', 'sustainable_rate'))} "
        "msg/s** sustained with the shipped config (burst ceiling "
        f"{n(_g(emb, 'mosquitto', 'burst', 'received_rate'))} msg/s), against ≥ "
        f"{n(_g(emb, _1S, 'sustainable_rate'))} msg/s (ceiling "
        f"{n(_g(emb, _1S, 'burst', 'received_rate'))} msg/s) with "
        "`autosave_on_changes false` + `autosave_interval 1` (a save once a second);",
        f"- the live pipeline: **{live_rate(sh)}** sustained with the shipped config, "
        f"{live_rate(var)} with the once-a-second save; even with the backend replaced by a "
        "bare subscriber the shipped broker delivered "
        f"{n(_g(sh, 'baseline_full', 'received_rate'))}/s of "
        f"{n(_g(sh, 'baseline_full', 'rate'))} offered with p99 "
        f"{n(_g(sh, 'baseline_full', 'p99_ms'))} ms (once-a-second save: "
        f"{n(_g(var, 'baseline_full', 'received_rate'))}/s of "
        f"{n(_g(var, 'baseline_full', 'rate'))}, p99 {n(_g(var, 'baseline_full', 'p99_ms'))} ms);",
        "- queueing for the backend while it is away (the case `max_queued_messages 500000` is "
        f"sized for): {n(q.get('shipped'))} msg/s for the first {n(q.get('n'))} messages, "
        "falling as the queue grows because each save writes the whole queue (O(n²)); "
        f"{n(q.get('prefill_config'))} msg/s without it. At the street's 5,000 ev/s target an "
        "outage would back up into the devices' own paho queues (10,000 messages each) instead "
        "of the broker;",
        f"- draining a {n(d.get('n'))}-message queue: `mosquitto_sub` got "
        f"{n(_g(by, 'shipped', 'mosquitto_sub', 'rate'))} msg/s with the shipped config against "
        f"{n(_g(by, 'autosave-1s', 'mosquitto_sub', 'rate'))} with the once-a-second save, bare "
        f"paho {n(_g(by, 'shipped', 'paho', 'rate'))} against "
        f"{n(_g(by, 'autosave-1s', 'paho', 'rate'))}.",
        "",
        "Where the time goes: at the same 1,000 msg/s the shipped broker used "
        f"{n(_cpu_at(emb, 'mosquitto', 1000), '.2f')} cores against "
        f"{n(_cpu_at(emb, _1S, 1000), '.2f')} with the once-a-second save: it is busy "
        "serialising and writing its database, and waits on the disk in between. The broker "
        "saves after every change so that a SIGKILLed broker keeps what it acknowledged "
        "(docs/reliability.md); the price is this ceiling. Recommendation (product, "
        "`broker_config/mosquitto.conf`): `autosave_on_changes false` with `autosave_interval 1` "
        "(a graceful stop still saves everything; a SIGKILL or power loss can lose up to about "
        "one second of acknowledged messages — say so in the docs), or keep "
        "`autosave_on_changes true` with a count such as `autosave_interval 5000` (bounded loss "
        "by count; not measured here)."
        + (
            " The live target cannot be met with the shipped setting whatever the backend does."
            if capped
            else ""
        ),
        "",
    ]


def _per_message(r: dict[str, Consumer]) -> str:
    """CPU per message of the bare paho drain and of the backend, from this run's samples."""
    paho = _g(r, "paho", "cpu_cores", "consumer") / _g(r, "paho", "rate") * 1e6
    backend = _g(r, "backend", "cpu_cores", "backend") / _g(r, "backend", "rate") * 1e6
    if not (paho == paho and backend == backend):  # NaN: a consumer failed
        return ""
    return (
        f"In this run bare paho used {paho:.0f} µs of CPU per message, the backend "
        f"{backend:.0f} µs ({backend / paho:.1f}×)."
    )


def ingest(res: Results) -> list[str]:
    """2. The backend's drain against bare paho: where its CPU goes and what is left to do."""
    d = res.get("drain", {})
    r = d.get("results", {})
    b_rate, p_rate = _g(r, "backend", "rate"), _g(r, "paho", "rate")
    proto = _g(r, "prototype", "rate")
    shares = get(d, "profile", "shares", default={})
    target = BACKEND_TARGET_RATIO

    def pc(f: str) -> str:
        return n(shares.get(f), ".0f") + " %"

    return [
        f"**2. Ingest: {n(b_rate)} msg/s = {ratio(b_rate, p_rate):.2f}× the bare paho drain "
        f"({n(p_rate)} msg/s); target {target:g}× "
        f"({n(target * p_rate if p_rate == p_rate else NAN)} msg/s).** Where the backend's CPU "
        "goes while draining (py-spy samples of this run, section 1; shares of all samples of "
        f"the process): `write_batch` {pc('write_batch')} (of which `AlarmEngine.observe` "
        f"{pc('AlarmEngine.observe')}, its `_telemetry` {pc('AlarmEngine._telemetry')}, "
        f"`_time_passes` {pc('AlarmEngine._time_passes')}; `_insert_ignore` "
        f"{pc('_insert_ignore')}; `classify` {pc('classify')}; `_count_stats` "
        f"{pc('_count_stats')}), the paho network thread `Client._loop` {pc('Client._loop')}, "
        f"acks `Client.ack` {pc('Client.ack')}. A wall-clock profile taken while building the "
        "first version of this benchmark (`py-spy record --idle --threads`) showed the "
        "`ingest-writer` thread busy nearly all the time, so the drain runs at the writer's "
        "speed while the paho network thread keeps the hand-off queue full.",
        "",
        "What issue 8 changed in the writer (first full run: 1,847 msg/s = 0.14×, of which "
        "`AlarmEngine.observe` 34 % of the samples): the alarm rules are evaluated per batch "
        "against the batch's open alarms and rule state, read with one query each "
        "(`BatchView` in `backend/alarms/batch.py`), so a telemetry message whose condition "
        "does not hold costs no statement (it cost a `SELECT`, a `DELETE` and another `SELECT` per "
        "rule), and repeated occurrences and rule state are written with one executemany per "
        "batch; only the rules that can act on a message's type are tried; the twins are one "
        "executemany per set of changed columns; the replay check looks `(device_id, seq)` up "
        "on its index (SQLite planned the former `(device_id, seq) IN (…)` as `SCAN event`, a "
        "full scan per batch growing with the table); burst rules count their window through "
        "`ix_event_device_id_type_ts` (migration 0004) instead of all of the device's rows; the "
        "lone-surrogate check re-encodes a message only when it has a `\\u` escape.",
        "",
        f"Why {target:g}× is not reached this way: the ratio compares CPU per message. "
        f"{_per_message(r)} The backend does all of paho's work (its network thread is that "
        f"baseline: `Client._loop` {pc('Client._loop')} of the samples) and then parses and "
        "validates every message (`classify`: JSON and two pydantic validations), inserts it "
        "with SQLAlchemy (`_insert_ignore`: per-row parameter processing of the datetime and "
        "JSON columns, then SQLite's insert into the table and its indexes) and commits, all "
        f"under one interpreter lock with the network thread. {target:g}× would leave the whole "
        "writer two thirds of paho's own per-message cost.",
        "",
        "The single-threaded prototype (`bench/ingest_prototype.py`: the same `write_batch`, "
        "alarms included, ack after commit, but paho driven from the writing thread and the "
        f"batch's PUBACKs flushed together) drained {n(proto)} msg/s "
        f"({ratio(proto, b_rate):.1f}× the backend): "
        + (
            "removing the thread hand-offs would help, at the price of not reading the socket "
            "while a batch commits."
            if ratio(proto, b_rate) >= 1.2
            else "the thread hand-offs are not what limits the drain."
        ),
        "",
        "What is left (in order of effect):",
        "",
        "1. Scale out rather than up: a replica per core, sharing the ingest through the shared "
        "subscription on PostgreSQL (`tests/integration/test_scale_out.py`); sizing in "
        "docs/scaling.md.",
        "2. `contracts/validation.py`: validate the envelope straight from the payload "
        "(`Envelope.model_validate_json`, about 7 µs a message against 15 µs for `json.loads` "
        "plus `model_validate`, measured while making these changes), keeping the present path "
        "for messages that fail, so that every refusal keeps its reason.",
        "3. `backend/ingest/persist.py` `_insert_ignore`: the rows through the driver's own "
        "executemany with parameters prepared once, instead of SQLAlchemy's per-row processing "
        "(dialect-specific code for SQLite and PostgreSQL).",
        "",
    ]


def live(res: Results) -> list[str]:
    """3. The live pipeline against its targets, and (when profiled) why it trails the drain."""
    lv = res.get("live", {})
    sh, var = lv.get("shipped", {}), lv.get("autosave-1s", {})
    lat, vl = sh.get("latency", {}), var.get("latency", {})
    out = [
        f"**3. Live end to end: {live_rate(sh)} sustained (target {TARGET_RATE:,} ev/s) and p99 "
        f"{n(lat.get('p99_ms'))} ms at {n(lat.get('rate'))} ev/s "
        f"({ratio(lat.get('p99_ms'), TARGET_P99_MS):.1f}× the {TARGET_P99_MS:.0f} ms target) "
        "with the shipped broker config.** Limited first by the broker's saves (point 1), then "
        "by ingest (point 2): with the once-a-second save the pipeline sustained "
        f"{live_rate(var)}, with p50 {n(vl.get('p50_ms'))} ms / p99 {n(vl.get('p99_ms'))} ms "
        f"at {n(vl.get('rate'))} ev/s, on a machine where the simulator, Mosquitto and the "
        "backend share two cores (see the CPU columns) with other people's tests. 5,000 ev/s "
        "needs both fixes; the ingest fix is the bigger one once the broker no longer waits on "
        "the disk.",
        "",
    ]
    lp = lv.get("profile", {})
    ls = lp.get("shares", {})
    if not ls:
        return out

    def pc(f: str) -> str:
        return n(ls.get(f), ".0f")

    drain_rate = _g(res, "drain", "results", "backend", "rate")
    return [
        *out,
        f"The live rate is below the drain rate ({n(drain_rate)} msg/s from 7 devices) "
        f"because the street has {n(sh.get('devices'))} devices and "
        "`write_batch` also does work per *device* in each batch: a twin row in the "
        "executemany, the device in the alarm view's `IN` lists and in the replay check, "
        "`_time_passes` per device, and with a few hundred devices per batch most messages are "
        f"their device's only one. Profile of the backend at {n(lp.get('rate'))} ev/s "
        f"(section 2): `write_batch` {pc('write_batch')} %, `AlarmEngine.observe` "
        f"{pc('AlarmEngine.observe')} % (of which `_time_passes` "
        f"{pc('AlarmEngine._time_passes')} %, `_telemetry` {pc('AlarmEngine._telemetry')} %), "
        f"`_insert_ignore` {pc('_insert_ignore')} %, `classify` {pc('classify')} %, all SQL "
        f"statements (`Connection.execute`) {pc('Connection.execute')} %, the paho network "
        f"thread {pc('Client._loop')} %.",
        "",
    ]
