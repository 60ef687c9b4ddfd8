"""Shared fixtures: a real Mosquitto with the project's broker_config/, databases, the backend."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters import credentials
from adapters.fleet import load_fleet
from contracts.fleet import Fleet
from stack.broker import BrokerProcess, generate_credentials, mosquitto_binary
from stack.ports import free_port
from stack.processes import BackendProcess, PostgresServer

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def fleet() -> Fleet:
    return load_fleet()


@pytest.fixture(scope="session")
def creds_dir(tmp_path_factory: pytest.TempPathFactory, fleet: Fleet) -> Path:
    out = tmp_path_factory.mktemp("credentials")
    generate_credentials(fleet, out)
    return out


@pytest.fixture(scope="session")
def creds(creds_dir: Path) -> credentials.Credentials:
    return credentials.load(creds_dir)


@pytest.fixture
def broker(tmp_path: Path, creds_dir: Path) -> Iterator[BrokerProcess]:
    """A fresh Mosquitto per test, on a free port, with broker_config/ (never port 1883)."""
    if mosquitto_binary() is None:
        pytest.fail("Mosquitto is not installed: run the README's test command (scripts/test.sh)")
    proc = BrokerProcess(free_port(), tmp_path / "broker", creds_dir).start()
    yield proc
    proc.stop()


# The broker's queue per session in `small_queue_broker`: small, so a test can make it overflow.
SMALL_QUEUE = 50


@pytest.fixture
def small_queue_broker(tmp_path: Path, creds_dir: Path) -> Iterator[BrokerProcess]:
    """The shipped configuration with a deliberately tiny queue, to make it overflow."""
    proc = BrokerProcess(
        free_port(),
        tmp_path / "small",
        creds_dir,
        overrides={"max_queued_messages": str(SMALL_QUEUE)},
    ).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    # Not under pytest's tmp dir: that is private to root, and the server runs as `postgres`.
    base = Path(tempfile.mkdtemp(prefix="lijia-pg-"))
    base.chmod(0o755)
    server = PostgresServer(base / "data").start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on SQLite and on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lijia.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"lijia_{next(_db_counter)}")


@pytest.fixture
def backend(
    broker: BrokerProcess, creds_dir: Path, database_url: str, tmp_path: Path
) -> Iterator[BackendProcess]:
    proc = BackendProcess(broker.port, creds_dir, database_url, tmp_path / "backend").start()
    yield proc
    proc.stop()
