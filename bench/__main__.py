"""`python -m bench [--quick] [--only drain,live,simulator,embedded,api]`: the performance and
scale-out benchmarks. They are not tests: they start real processes (Mosquitto, the backend,
the simulator, the embedded broker) on free local ports, print numbers, and write
docs/benchmarks.md and docs/benchmarks.png (a full run) with every figure next to a baseline
measured in the same run."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from bench.common import ROOT, LoadMonitor, log, machine_info, new_workdir, raise_nofile

if TYPE_CHECKING:
    from bench.report.results import Results

BENCHMARKS = ("drain", "live", "simulator", "embedded", "api")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run, about 2-4 minutes")
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated subset of {','.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for benchmarks.md/.png/.json (default: docs/ for a full run "
        "of everything, else the work folder)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="before each benchmark, wait up to this long for other processes "
        "to use under 0.3 cores (default 60 for a full run, 0 for --quick)",
    )
    parser.add_argument(
        "--report-from",
        type=Path,
        default=None,
        metavar="RESULTS_JSON",
        help="only rewrite the report (into --out, default docs/) from the "
        "results.json of an earlier run (or the work folder that holds it)",
    )
    args = parser.parse_args(argv)
    if args.report_from:
        from bench import report

        source: Path = args.report_from
        if source.is_dir():
            source = source / "results.json"
        earlier = cast("Results", json.loads(source.read_text()))
        out_dir = args.out or ROOT / "docs"
        out_dir.mkdir(parents=True, exist_ok=True)  # as a benchmark run does
        (out_dir / "benchmarks.md").write_text(
            report.markdown(earlier, png_name="benchmarks.png"), encoding="utf-8"
        )
        report.chart(earlier, out_dir / "benchmarks.png")
        print(report.summary_text(earlier))
        return 0
    only = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = set(only) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    nofile = raise_nofile()
    work = new_workdir(args.keep)
    complete = not args.quick and set(only) == set(BENCHMARKS)
    out_dir = args.out or (ROOT / "docs" if complete else work)
    command = " ".join(["python -m bench", *[shlex.quote(a) for a in (argv or sys.argv[1:])]])
    log(f"work folder {work}; RLIMIT_NOFILE {nofile}; results go to {out_dir}")

    from bench import api, drain, embedded, live, simulator

    modules = {
        "drain": drain,
        "live": live,
        "simulator": simulator,
        "embedded": embedded,
        "api": api,
    }
    results: dict[str, Any] = {
        "machine": machine_info(),
        "quick": args.quick,
        "command": command,
        "timings": {},
        "load": {},
    }
    wait_idle = args.wait_idle if args.wait_idle is not None else (0.0 if args.quick else 60.0)
    monitor = LoadMonitor().start()
    t_all = time.monotonic()
    for name in only:
        if wait_idle > 0:
            monitor.wait_quiet(wait_idle)
        log(f"=== {name} ===")
        t0 = time.monotonic()
        try:
            results[name] = modules[name].run(work, args.quick)
        except Exception as exc:  # one failed benchmark must not hide the others
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        results["timings"][name] = time.monotonic() - t0
        results["load"][name] = monitor.window(t0, time.monotonic())
        log(f"=== {name} took {results['timings'][name]:.0f} s; load {results['load'][name]} ===")
    results["timings"]["total"] = time.monotonic() - t_all
    monitor.stop()

    from bench import report

    out_dir.mkdir(parents=True, exist_ok=True)
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    done = cast("Results", results)
    md = report.markdown(done, png_name="benchmarks.png")
    (out_dir / "benchmarks.md").write_text(md, encoding="utf-8")
    chart = report.chart(done, out_dir / "benchmarks.png")
    print()
    print(report.summary_text(done))
    log(f"wrote {out_dir / 'benchmarks.md'}" + (f" and {chart}" if chart else " (no chart)"))
    log(f"raw results: {work / 'results.json'}")
    if not args.keep:
        # Keep only the raw results; databases and broker folders can be large.
        for child in work.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
    failed = [n for n in only if isinstance(results.get(n), dict) and "error" in results[n]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
