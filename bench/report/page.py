"""docs/benchmarks.md and the console summary: the page template filled from one run."""

from __future__ import annotations

from typing import Literal

from bench.report import limits_parts, limits_pipeline, sections, templates
from bench.report.fmt import table, verdict
from bench.report.headlines import headlines
from bench.report.results import Results

Benchmark = Literal["drain", "live", "simulator", "embedded", "api"]
BENCHMARKS: tuple[Benchmark, ...] = ("drain", "live", "simulator", "embedded", "api")
_HEADLINE_COLUMNS = ["measure", "this run", "baseline (same run)", "ratio", "target", ""]


def analysis(res: Results) -> str:
    """The "what limits it" section: each point is one paragraph function of this run's data."""
    out = ["## What limits it (targets missed, by how much, and why)", ""]
    out += limits_pipeline.load_caveat(res)
    out += limits_pipeline.persistence(res)
    out += limits_pipeline.ingest(res)
    out += limits_pipeline.live(res)
    out += limits_parts.simulator(res)
    out += limits_parts.embedded(res)
    out += limits_parts.api(res)
    return "\n".join(out)


def _machine(res: Results) -> str:
    m, t = res["machine"], res.get("timings", {})
    others = ", ".join(
        f"{k} {v.get('other_cores', float('nan')):.2f}" for k, v in res.get("load", {}).items()
    )
    rows = [
        ["CPU", f"{m['cpu']} ({m['nproc']} cores)"],
        ["memory", f"{m['memory_gib']} GiB"],
        ["kernel", m["kernel"]],
        ["Python", m["python"]],
        ["Mosquitto", m["mosquitto"]],
        ["SQLite", m["sqlite"]],
        ["packages", ", ".join(f"{k} {v}" for k, v in m.get("packages", {}).items())],
        ["commit", m["git"]],
        ["RLIMIT_NOFILE", str(m["nofile"])],
        ["time per benchmark", ", ".join(f"{k} {v:.0f} s" for k, v in t.items())],
        ["CPU used by other processes during each benchmark (cores, average of 2)", others or "–"],
    ]
    return table(["what", "value"], rows)


def markdown(res: Results, png_name: str) -> str:
    heads = [
        [h.what, h.value, h.baseline, h.ratio, h.target, verdict(h.met)] for h in headlines(res)
    ]
    return templates.PAGE.substitute(
        date=res["machine"]["date"],
        mode="quick (smoke) mode" if res.get("quick") else "full mode",
        minutes=f"{res.get('timings', {}).get('total', 0) / 60:.1f}",
        command=res["command"],
        machine=_machine(res),
        png=png_name,
        headlines=table(_HEADLINE_COLUMNS, heads),
        analysis=analysis(res),
        drain=sections.drain(res.get("drain")),
        live=sections.live(res.get("live")),
        simulator=sections.simulator(res.get("simulator")),
        embedded=sections.embedded(res.get("embedded")),
        api=sections.api(res.get("api")),
    )


def summary_text(res: Results) -> str:
    lines = ["Lijia Street benchmarks" + (" (quick)" if res.get("quick") else "")]
    for h in headlines(res):
        met = "" if h.met is None else (" [met]" if h.met else " [MISSED]")
        lines.append(
            f"- {h.what}: {h.value} | baseline {h.baseline} | {h.ratio} | target {h.target}{met}"
        )
    for name in BENCHMARKS:
        entry = res.get(name)
        if isinstance(entry, dict) and "error" in entry:
            lines.append(f"- {name}: FAILED: {entry['error']}")
    return "\n".join(lines)
