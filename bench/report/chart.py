"""docs/benchmarks.png: one panel per benchmark (matplotlib; no chart without it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report.fmt import get, n
from bench.targets import (
    TARGET_CORES,
    TARGET_DEVICES,
    TARGET_MB,
    TARGET_P95_MS,
    TARGET_P99_MS,
    TARGET_RATE,
)


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
            vals = [get(rc, k, "rate", default=0.0) for k in keys]
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
            label=f"{name} (ceiling {n(get(b, 'burst', 'received_rate'))}/s)",
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
