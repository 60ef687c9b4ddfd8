"""docs/benchmarks.png: one panel per benchmark (matplotlib; no chart without it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import targets
from bench.report.fmt import get, n, sweeps
from bench.report.results import Api, Drain, Embedded, Live, Results, Simulator


def _plot(
    ax: Any,
    rows: Sequence[Mapping[str, Any]],
    x: str,
    y: Callable[[Any], float],
    fmt: str,
    **kw: Any,
) -> None:
    """One series: `x` of each row against `y(row)`."""
    ax.plot([r[x] for r in rows], [y(r) for r in rows], fmt, **kw)


def _p99(r: Mapping[str, Any]) -> float:
    return max(float(r["p99_ms"]), 0.1)  # a log axis has no zero


def _drain(ax: Any, d: Drain) -> None:
    if "results" in d:
        keys = ["mosquitto_sub", "paho", "backend", "prototype"]
        labels = ["mosquitto_sub", "bare paho", "backend", "1-thread\nprototype"]
        configs = d.get("by_config", {"autosave-1s": d["results"]})
        width = 0.8 / len(configs)
        for j, ((cfg, rc), color) in enumerate(
            zip(configs.items(), ("#1f77b4", "#d62728"), strict=False)
        ):
            xs = [i + (j - (len(configs) - 1) / 2) * width for i in range(len(keys))]
            vals = [get(rc, k, "rate", default=0.0) for k in keys]
            bars = ax.bar(xs, vals, width, color=color, label=f"broker {cfg}")
            ax.bar_label(bars, labels=[f"{v:,.0f}" if v else "" for v in vals], fontsize=7)
        ax.set_xticks(range(len(keys)), labels)
        target = targets.BACKEND_TARGET_RATIO * d["results"]["paho"]["rate"]
        ax.axhline(target, ls="--", c="k", lw=1)
        label = f"target {targets.BACKEND_TARGET_RATIO:g}× paho (autosave-1s)"
        ax.text(-0.4, target, label, va="bottom", fontsize=8)
        ax.legend(fontsize=8)
    ax.set_title(f"1. Drain of a queued session ({d.get('n', 0):,} msgs)")
    ax.set_ylabel("messages/s")


def _live(ax: Any, ax2: Any, lv: Live) -> None:
    for (name, sw), c in zip(sweeps(lv), ("#d62728", "#1f77b4"), strict=False):
        runs = sorted(sw["steps"], key=lambda s: s["rate"])
        extra = sw.get("confirms", []) + ([sw["latency"]] if "latency" in sw else [])
        long_runs = f"{name}: 60 s / half-rate runs"
        _plot(ax, runs, "rate", lambda s: s["stored_rate"], "o-", c=c,
              label=f"backend, broker {name} (probes)")  # fmt: skip
        _plot(ax, extra, "rate", lambda s: s["stored_rate"], "D", c=c, mfc="none",
              label=f"backend, {long_runs}")  # fmt: skip
        _plot(ax2, runs, "rate", _p99, "o-", c=c, label=f"backend p99, {name} (probes)")
        _plot(ax2, extra, "rate", _p99, "D", c=c, mfc="none", label=f"backend p99, {long_runs}")
        bl = [r for r in (sw.get("baseline_half"), sw.get("baseline_full")) if r is not None]
        _plot(ax2, bl, "rate", _p99, "s--", c=c, alpha=0.6, label=f"bare subscriber p99, {name}")
    top = max([s["rate"] for _, sw in sweeps(lv) for s in sw["steps"]] or [targets.TARGET_RATE])
    ax.plot([0, top], [0, top], c="#888", lw=0.8, ls=":", label="stored = offered")
    ax.axvline(targets.TARGET_RATE, ls="--", c="k", lw=1)
    ax.set(
        title="2. Live: stored vs offered (SQLite)",
        xlabel="offered events/s",
        ylabel="stored events/s (steady)",
    )
    ax.legend(fontsize=8)
    ax2.set_yscale("log")
    ax2.axhline(targets.TARGET_P99_MS, ls="--", c="k", lw=1)
    ax2.set(
        title="2. Live: publish→commit p99",
        xlabel="offered events/s",
        ylabel="p99 latency, ms (log)",
    )
    ax2.legend(fontsize=8)


def _simulator(ax: Any, sim: Simulator) -> None:
    if "fleet" in sim:
        mem, cpu = "#2ca02c", "#9467bd"
        axc = ax.twinx()
        fleet, bare = sim.get("fleet", []), sim.get("bare", [])
        for rows, style, label in (
            (fleet, "o-", f"FleetRunner x{sim['busy_speed']:g}"),
            (bare, "s--", "bare paho"),
        ):
            _plot(ax, rows, "devices", lambda r: r["rss_delta_mb"], style, c=mem,
                  label=f"{label}: MB")  # fmt: skip
        ax.axhline(targets.TARGET_MB, ls="--", c=mem, lw=1)
        for key, rows, style in (("fleet", fleet, "o-"), ("bare", bare, "s--")):
            _plot(axc, rows, "devices", lambda r: r["cpu_cores"], style, c=cpu,
                  label=f"{key}: cores")  # fmt: skip
        axc.axhline(targets.TARGET_CORES, ls="--", c=cpu, lw=1)
        axc.set_ylabel("CPU cores", color=cpu)
        ax.axvline(targets.TARGET_DEVICES, ls=":", c="k", lw=1)
        ax.legend(fontsize=8, loc="upper left")
        axc.legend(fontsize=8, loc="lower right")
    ax.set_title("3. Simulator: memory and CPU")
    ax.set_xlabel("devices")
    ax.set_ylabel("RSS Δ MB", color="#2ca02c")


def _embedded(ax: Any, emb: Embedded) -> None:
    brokers = emb.get("brokers", {}).items()
    for (name, b), c in zip(brokers, ("#ff7f0e", "#d62728", "#1f77b4"), strict=False):
        label = f"{name} (ceiling {n(get(b, 'burst', 'received_rate'))}/s)"
        _plot(ax, b.get("steps", []), "rate", _p99, "o-", c=c, label=label)
    ax.set_yscale("log")
    ax.set(
        title="4. Publish→subscribe p99, one publisher",
        xlabel="offered msg/s",
        ylabel="p99 ms (log)",
    )
    ax.legend(fontsize=8)


def _api(ax: Any, api: Api) -> None:
    if "results" in api:
        items = list(api["results"].items())
        vals = [r["p95_ms"] for _, r in items]
        ax.barh(
            [lbl.replace("events, ", "ev: ") for lbl, _ in items],
            vals,
            color=[
                "#999"
                if lbl.startswith("health")
                else ("#d62728" if v >= targets.TARGET_P95_MS else "#2ca02c")
                for (lbl, _), v in zip(items, vals, strict=True)
            ],
        )
        ax.axvline(targets.TARGET_P95_MS, ls="--", c="k", lw=1)
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=8)
    ax.set_title(f"5. API p95 at {api.get('rows', 0):,} events")
    ax.set_xlabel("p95 ms")


def chart(res: Results, path: Path) -> Path | None:
    """Write the chart to `path`; None (and no file) without matplotlib."""
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
    _drain(axes[0][0], res.get("drain", {}))
    _live(axes[0][1], axes[0][2], res.get("live", {}))
    _simulator(axes[1][0], res.get("simulator", {}))
    _embedded(axes[1][1], res.get("embedded", {}))
    _api(axes[1][2], res.get("api", {}))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
