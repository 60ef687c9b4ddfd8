"""Number formatting, lookups in the stored results and Markdown tables for the report."""

from __future__ import annotations

import math
from typing import Any, Literal, cast

from bench.report.results import Live, SimRow, Simulator, Sweep

NAN = float("nan")
SimKey = Literal["fleet", "bare", "realtime"]


def n(x: Any, fmt: str = ",.0f") -> str:
    """A number as the report prints it; "–" for a missing one."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return format(x, fmt)


def ratio(a: Any, b: Any) -> float:
    """a / b, NaN when either is missing or b is zero."""
    try:
        return float(a) / float(b) if b else NAN
    except (TypeError, ValueError):
        return NAN


def times(x: float) -> str:
    """A ratio as "0.34×"."""
    return "–" if math.isnan(x) else f"{x:.2f}×"


def verdict(flag: bool | None) -> str:
    return "–" if flag is None else ("**met**" if flag else "**missed**")


def get(d: Any, *path: Any, default: Any = None) -> Any:
    """d[path[0]][path[1]]… through dicts and lists, or `default` where a step is missing."""
    for p in path:
        if (isinstance(d, dict) and p in d) or (
            isinstance(d, list) and isinstance(p, int) and -len(d) <= p < len(d)
        ):
            d = d[p]
        else:
            return default
    return d


def table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def cores(c: dict[str, float] | None) -> str:
    if not c:
        return "–"
    return ", ".join(f"{k} {v:.2f}" for k, v in c.items())


def code_block(intro: str, text: str) -> list[str]:
    """A profile or allocation listing under its one-line introduction."""
    return ["", intro, "", "```", text, "```"]


def live_rate(sw: Sweep) -> str:
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


def sim_at(sim: Simulator, key: SimKey, devices: int) -> SimRow:
    """The simulator row of `key` ("fleet", "bare", "realtime") for that many devices, or {}."""
    none: SimRow = {}
    return next((r for r in sim.get(key, []) if r["devices"] == devices), none)


def sweeps(lv: Live) -> list[tuple[str, Sweep]]:
    """The live benchmark's broker configs that ran (name, sweep), in the order they ran."""
    return [(k, cast(Sweep, v)) for k, v in lv.items() if isinstance(v, dict) and "steps" in v]
