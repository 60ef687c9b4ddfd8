"""Scenario runs inside the backend process, for the API and the console.

Each run is `scenarios.runner.Run` in a thread of its own, as `python -m scenarios run` plays
it: injections go through the broker as the devices (their own credentials, read from the
backend's credentials folder); the expectations and commands go through a street port given by
the caller (backend.api.drills: the API routes' own code, called in-process), so a run sees what an
API client would see without going over the network. The last few runs are kept in memory (they
are drills, not records: the events they injected are stored and carry the run id).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from adapters.fleet import device_kinds
from backend.config import Settings
from contracts.topics import Channel
from contracts.vocabulary import RunStatus
from scenarios.expectations import Verdict
from scenarios.model import Scenario, load_scenario, shipped
from scenarios.port import StreetPort
from scenarios.progress import RunEvent, StepDone
from scenarios.runner import Run
from scenarios.wire import Connection, DevicePublishers, ScenarioError, build_envelope, render

log = logging.getLogger(__name__)

Source = Literal["shipped", "inline"]

MAX_RUNNING = 3  # each run holds an MQTT session per device it drives and polls the API
KEEP_RUNS = 20  # finished runs kept for GET /scenarios/runs; the oldest are forgotten
LOG_LINES = 500
STOP_JOIN_S = 10.0


class ScenarioBusy(RuntimeError):
    """Too many runs at once, or this scenario is already running (HTTP 409)."""


@dataclass
class ScenarioJob:
    """One run and what the API shows of it."""

    run: Run
    source: Source
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))  # street time
    ended_at: datetime | None = None
    status: RunStatus = RunStatus.RUNNING
    steps_done: int = 0
    error: str | None = None
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    thread: threading.Thread | None = None

    @property
    def id(self) -> str:
        return self.run.run_id

    @property
    def scenario(self) -> Scenario:
        return self.run.scenario

    @property
    def steps_total(self) -> int:
        return len(self.run.scenario.steps)

    @property
    def verdicts(self) -> list[Verdict]:
        return list(self.run.verdicts)

    @property
    def log_lines(self) -> list[str]:
        return list(self.lines)

    def add_line(self, line: str) -> None:
        # Called from the timeline and the watcher threads; deque.append is atomic.
        self.lines.append(line)

    def on_event(self, event: RunEvent) -> None:
        """The run's sink: progress counts the steps, everything else is a line of the log."""
        if isinstance(event, StepDone):
            self.steps_done = event.done
        else:
            self.add_line(event.text)

    def finish(self, now: datetime) -> None:
        run = self.run
        if run.stopped:
            self.status = RunStatus.STOPPED
        elif self.error is not None or run.errors:
            self.status = RunStatus.ERROR
            self.error = self.error or "; ".join(run.errors)
        elif all(v.passed for v in run.verdicts):
            self.status = RunStatus.PASSED
        else:
            self.status = RunStatus.FAILED
        self.ended_at = now


class ScenarioJobs:
    """The runs of this backend process: start, stop, list; at most MAX_RUNNING at once."""

    def __init__(
        self,
        settings: Settings,
        street: Callable[[], StreetPort],
        max_running: int = MAX_RUNNING,
        keep: int = KEEP_RUNS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.clock = clock  # the street's (backend/street_clock.py): runs' start and end
        self.street = street  # one port per run, closed when the run ends
        self.max_running = max_running
        self.keep = keep
        self._jobs: OrderedDict[str, ScenarioJob] = OrderedDict()
        self._lock = threading.Lock()
        self._kinds: dict[str, str] | None = None

    # -- what can be run ---------------------------------------------------------------------
    def shipped(self) -> dict[str, Scenario]:
        """The files in scenarios/drills/, by scenario name; read on every call, so an edited
        drill is picked up without a restart. A file that does not load is left out."""
        found: dict[str, Scenario] = {}
        for path in shipped():
            try:
                sc = load_scenario(path)
            except (OSError, ValueError) as exc:
                log.warning("shipped scenario %s does not load: %s", path.name, exc)
                continue
            found.setdefault(sc.name, sc)
        return found

    def kind_of(self, device_id: str) -> str | None:
        if self._kinds is None:
            self._kinds = device_kinds(self.settings.fleet_file, self.settings.fleet_size)
        return self._kinds.get(device_id)

    def check_payloads(self, scenario: Scenario) -> list[tuple[list[str | int], str]]:
        """What the timeline would refuse half-way (unknown devices, payloads the contract
        refuses), found before it starts: (where in the scenario, why). The reasons name
        devices, types and fields, never the values."""
        problems: list[tuple[list[str | int], str]] = []
        now = self.clock()
        for i, step in enumerate(scenario.steps):
            for action, channel in (("inject", Channel.EVENTS), ("telemetry", Channel.TELEMETRY)):
                spec = getattr(step, action, None)
                if spec is None:
                    continue
                loc: list[str | int] = ["steps", i, action]
                kind = self.kind_of(spec.device)
                if kind is None:
                    problems.append(([*loc, "device"], "not a device of the street's fleet"))
                    continue
                event_type = spec.type if channel is Channel.EVENTS else "telemetry"
                try:
                    build_envelope(
                        kind, spec.device, channel, event_type, render(spec.data, "run-0", now)
                    )
                except ScenarioError as exc:
                    problems.append(([*loc, "data"], str(exc)))
                except (OverflowError, ValueError):  # e.g. {{now+1e12s}}: past the calendar
                    problems.append(([*loc, "data"], "a {{now±Ns}} template is out of range"))
        return problems

    # -- runs --------------------------------------------------------------------------------
    def start(self, scenario: Scenario, source: Source) -> ScenarioJob:
        s = self.settings
        conn = Connection(
            host=s.mqtt_host,
            port=s.mqtt_port,
            protocol=s.mqtt_protocol,
            credentials_dir=s.credentials_dir,
            fleet_file=s.fleet_file,
            fleet_size=s.fleet_size,
        )
        with self._lock:
            running = [j for j in self._jobs.values() if j.status == RunStatus.RUNNING]
            same = [j for j in running if j.scenario.name == scenario.name]
            if same:
                # Two runs of one drill would count each other's alarms as their own.
                raise ScenarioBusy(f"scenario {scenario.name!r} is already running: {same[0].id}")
            if len(running) >= self.max_running:
                raise ScenarioBusy(
                    f"{len(running)} runs are in progress; at most {self.max_running}"
                )
            job = ScenarioJob(
                Run(scenario, self.street(), DevicePublishers(conn)), source, self.clock()
            )
            job.run.sink = job.on_event
            job.thread = threading.Thread(
                target=self._work, args=(job,), name=f"scenario-{job.id}", daemon=True
            )
            self._jobs[job.id] = job
            self._forget_old()
        job.thread.start()
        return job

    def _work(self, job: ScenarioJob) -> None:
        run = job.run
        job.add_line(f"scenario {job.scenario.name} · run {job.id}")
        try:
            run.execute()
        except ScenarioError as exc:  # before the timeline: e.g. the database unreachable
            run.errors.append(str(exc))
            job.add_line(f"error: {exc}")
        except Exception as exc:
            log.exception("scenario run %s failed", job.id)
            # The type only: an unexpected exception's text may carry anything.
            job.error = f"internal error ({type(exc).__name__}); see the backend's log"
            job.add_line(f"error: {job.error}")
        finally:
            run.close()  # the simulator control session of drill steps, if one was opened
            run.devices.close()
            run.street.close()
            with self._lock:
                job.finish(self.clock())
            passed = sum(1 for v in run.verdicts if v.passed)
            job.add_line(f"{job.status}: {passed}/{len(run.verdicts)} expectations passed")

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.status != RunStatus.RUNNING]
        for run_id in finished[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[run_id]

    def get(self, run_id: str) -> ScenarioJob | None:
        with self._lock:
            return self._jobs.get(run_id)

    def list(self) -> list[ScenarioJob]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._jobs.values()))

    def stop(self, job: ScenarioJob, wait_s: float = STOP_JOIN_S) -> ScenarioJob:
        """Ask the run to stop and give it a moment to wind up (a step under way, e.g. a
        publish, ends first), so the answer usually shows it stopped. An ended run is left
        as it is."""
        if job.status == RunStatus.RUNNING:
            job.run.stop()
            if job.thread is not None:
                job.thread.join(wait_s)
        return job

    def shutdown(self) -> None:
        for job in self.list():
            if job.status == RunStatus.RUNNING:
                job.run.stop()
        for job in self.list():
            if job.thread is not None:
                job.thread.join(STOP_JOIN_S)
