"""The benchmark report is rendered from stored results alone (no benchmark runs here)."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import cast

from bench.report import markdown, summary_text
from bench.report.headlines import headlines
from bench.report.results import Results

ROOT = Path(__file__).resolve().parents[2]
# A synthetic run: every benchmark present, several targets missed, profiles and plans included.
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "bench_results.json"


def _sample() -> Results:
    return cast(Results, json.loads(SAMPLE.read_text(encoding="utf-8")))


def test_the_page_carries_every_section_and_leaves_no_placeholder() -> None:
    md = markdown(_sample(), png_name="benchmarks.png")
    assert md.startswith("# Benchmarks\n")
    for heading in (
        "## Results against the targets",
        "## What limits it (targets missed, by how much, and why)",
        "## 1. Ingest drain",
        "## 2. Live end to end",
        "## 3. The simulator",
        "## 4. The embedded broker",
        "## 5. The API at 1,000,000 events",
    ):
        assert f"\n{heading}\n" in md
    assert "$" not in md.replace("`$SYS`", "")
    assert "![Benchmarks chart](benchmarks.png)" in md
    assert "FACTS.md" not in md


def test_headlines_hold_this_runs_numbers_and_verdicts() -> None:
    rows = headlines(_sample())
    drain = next(h for h in rows if h.what.startswith("1. Drain"))
    assert drain.value.startswith("4,100 msg/s")
    assert drain.ratio.startswith("0.34× of paho")
    assert drain.met is False
    embedded = next(h for h in rows if h.what.startswith("4."))
    assert embedded.met is None


def test_benchmarks_not_run_are_reported_as_such() -> None:
    res = _sample()
    del res["drain"], res["simulator"], res["api"]
    res["embedded"] = {"error": "RuntimeError: boom"}
    md = markdown(res, png_name="x.png")
    assert md.count("Failed: `not run`") == 3
    assert "Failed: `RuntimeError: boom`" in md
    assert "- embedded: FAILED: RuntimeError: boom" in summary_text(res)


def test_bench_never_imports_tests() -> None:
    for path in (ROOT / "bench").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n == "tests" or n.startswith("tests.") for n in names), path
