"""docs/benchmarks.md, its chart and the console summary, from the results of one run."""

from __future__ import annotations

from bench.report.chart import chart
from bench.report.page import markdown, summary_text

__all__ = ["chart", "markdown", "summary_text"]
