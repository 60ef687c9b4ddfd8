"""Privacy: no column for personal data, and no raw resident identifier in the database or the
logs after a day of the street (residents travel only as pseudonyms)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import SQLModel

import backend.models  # noqa: F401  (registers the tables)
from adapters.fleet import load_fleet
from devices.population import Population
from stack.broker import BrokerProcess
from stack.processes import ROOT, BackendProcess, devices_command, wait_until
from tests.helpers import own_backend

# Column names that would hold what must never be stored: a person's name, an image, biometrics.
FORBIDDEN = re.compile(r"(^|_)(name|image|photo|picture|face|template|biometric|phone|id_card)")
# Devices and commands have names ("North Gate", "open-once"): those are not about people.
ALLOWED = {("device", "name_en"), ("device", "name_zh"), ("command", "name")}


def test_no_table_has_a_column_for_personal_data() -> None:
    offending = [
        (table.name, column.name)
        for table in SQLModel.metadata.sorted_tables
        for column in table.columns
        if FORBIDDEN.search(column.name) and (table.name, column.name) not in ALLOWED
    ]
    assert offending == []
    assert len(SQLModel.metadata.sorted_tables) >= 7  # the check saw the real schema


PERSONAL_DEVICES = [
    "gate-north",
    "cabinet-civic-centre",
    "book-house-lijia",
    "school-lijia-experimental",
    "stereo-lijia-garden-square",
    "property-app-lijia-garden",
]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'day.db'}"


@pytest.fixture
def day_backend(
    broker: BrokerProcess, creds_dir: Path, database_url: str, tmp_path: Path
) -> Iterator[BackendProcess]:
    # A simulated day runs the device clocks ahead of ours on purpose.
    env = {"LIJIA_MAX_CLOCK_SKEW_S": "0"}
    yield from own_backend(broker, creds_dir, database_url, tmp_path / "b", env)


@pytest.mark.integration
def test_a_day_of_the_street_leaves_no_raw_resident_identifier(
    broker: BrokerProcess,
    day_backend: BackendProcess,
    creds_dir: Path,
    tmp_path: Path,
    database_url: str,
) -> None:
    log_path = tmp_path / "devices.log"
    with log_path.open("wb") as out:
        devices = subprocess.run(
            devices_command(
                broker.port,
                creds_dir,
                "--speed",
                # Paced rather than "max": an unpaced burst makes Mosquitto's per-change
                # persistence the bottleneck (see docs/reliability.md), and a day still takes 30 s.
                "2880",
                "--start",
                "2026-11-23",
                "--hours",
                "24",
                # One device of each kind that meets residents: a day in well under a minute.
                *[arg for device in PERSONAL_DEVICES for arg in ("--only", device)],
            ),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
    assert devices.returncode == 0, log_path.read_text()[-2000:]
    # Everything the fleet sent has been taken in once the ingest queue stays empty.
    wait_until(
        lambda: day_backend.health()["stored"] > 1000 and day_backend.health()["ingest_lag_s"] == 0,
        timeout=120,
    )

    db = sqlite3.connect(database_url.removeprefix("sqlite:///"))
    dump = "\n".join(db.iterdump())
    db.close()
    text = dump + log_path.read_text(errors="replace") + day_backend.log()
    fleet = load_fleet()
    population = Population(fleet.population, fleet.seed)
    raw_ids = {population.raw_id(i) for i in range(fleet.population)}
    leaked = {raw for raw in raw_ids if raw in text}
    assert leaked == set()
    # The check looked at the right data: residents are there, as pseudonyms.
    seen = set(re.findall(r"r-[0-9a-f]{16}", dump))
    assert len(seen) > 20
    assert seen <= {population.ref(i) for i in range(fleet.population)}
