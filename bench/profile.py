"""Sampling profiles of a running process with py-spy (optional), summarised as text."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, log

_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    found = Path(sys.executable).parent / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


@dataclass
class Profile:
    samples: int
    self_top: list[tuple[str, float]]
    inclusive_top: list[tuple[str, float]]
    threads: list[tuple[str, float]]
    inclusive_all: dict[str, float]

    def share(self, func: str) -> float:
        """Inclusive % of samples in function `func` (e.g. "AlarmEngine.observe")."""
        return sum(v for k, v in self.inclusive_all.items() if k.startswith(func + " ("))

    def shares(self, funcs: list[str]) -> dict[str, float]:
        return {f: round(self.share(f), 1) for f in funcs}

    def as_text(self, title: str) -> str:
        lines = [f"{title}: {self.samples} samples (py-spy, 100 Hz, active threads only)"]
        lines.append("  self time (where the CPU was):")
        lines += [f"    {share:5.1f}%  {name}" for name, share in self.self_top]
        lines.append("  inclusive time (the frame or anything it called):")
        lines += [f"    {share:5.1f}%  {name}" for name, share in self.inclusive_top]
        return "\n".join(lines)


def _short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "/lib/python3.", f"{ROOT}/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3.":
                path = "stdlib/" + path.split("/", 1)[-1]
            break
    else:
        path = Path(path).name if path.startswith("/") else path
    return f"{m.group('func')} ({path})"


def summarise(raw: Path, top: int = 15) -> Profile | None:
    if not raw.exists():
        return None
    self_c: Counter[str] = Counter()
    incl_c: Counter[str] = Counter()
    thread_c: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        stack, count = m.group(1), int(m.group(2))
        frames = stack.split(";")
        if frames and frames[0].startswith(("thread ", "process ")):
            thread_c[frames[0]] += count
            frames = frames[1:]
        if not frames:
            continue
        names = [_short(f) for f in frames]
        total += count
        self_c[names[-1]] += count
        for name in set(names):
            incl_c[name] += count
    if not total:
        return None

    def pct(c: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(name, 100 * v / total) for name, v in c.most_common(n)]

    return Profile(
        total,
        pct(self_c, top),
        pct(incl_c, top),
        pct(thread_c, 10),
        {name: 100 * v / total for name, v in incl_c.items()},
    )


INGEST_FUNCS = [
    "Ingest._write_loop",
    "write_batch",
    "AlarmEngine.observe",
    "AlarmEngine._telemetry",
    "AlarmEngine._time_passes",
    "_insert_ignore",
    "_count_stats",
    "classify",
    "Client.ack",
    "Client._loop",
    "Ingest._on_message",
]


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """Start sampling `pid` for `seconds` in the background; None if py-spy is not installed."""
    exe = py_spy()
    if exe is None:
        log("py-spy not installed (pip install py-spy): no profile")
        return None
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "100",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
