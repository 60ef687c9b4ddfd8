"""The README's first command: `python -m stack up` brings the whole street up, and down."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from stack.processes import ROOT, wait_until

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("embedded", [False, True], ids=["mosquitto", "embedded-broker"])
def test_up_starts_everything_and_gates_report_events(tmp_path: Path, embedded: bool) -> None:
    out_path = tmp_path / "up.out"
    cmd = [sys.executable, "-m", "stack", "up", "--var", str(tmp_path / "var"), "--speed", "60"]
    if embedded:
        cmd.append("--embedded-broker")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIJIA_")}
    with out_path.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        text = wait_until(lambda: "Ctrl-C" in out_path.read_text() and out_path.read_text(), 90)
        api = re.search(r"API\s+: (http://\S+)", text)
        console = re.search(r"console : (http://\S+)", text)
        assert api and console, text
        assert ("embedded" in text) == embedded
        assert httpx.get(console.group(1) + "/_stcore/health").status_code == 200
        # Reads need a key: the one the launcher wrote (and gave the console).
        key = {"X-API-Key": (tmp_path / "var" / "api_key").read_text().strip()}

        def all_online() -> bool:
            devices = httpx.get(api.group(1) + "/devices", headers=key).json()["data"]
            return bool(devices) and all(d["availability"] == "online" for d in devices)

        wait_until(all_online, 60)
        wait_until(lambda: httpx.get(api.group(1) + "/events", headers=key).json()["data"], 60)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
