"""Runs a scenario: plays its timeline (injections as the devices, commands through the API)
while polling the API for its expectations, then gives one verdict per expectation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx

from contracts.alarms import compare
from contracts.simulation import Target
from contracts.topics import Channel
from contracts.vocabulary import AlarmStatus
from scenarios.control import SimulatorLink
from scenarios.model import (
    FINAL_STATUSES,
    DrillStep,
    ExpectAlarm,
    Expectation,
    ExpectCommand,
    ExpectDevices,
    ExpectEvents,
    ExpectShare,
    ExpectTwin,
    Scenario,
    Step,
)
from scenarios.wire import DevicePublishers, ScenarioError, new_run_id, render

POLL_S = 0.25
SHARE_CAP = 5000  # events read for a share expectation, at most


class Api:
    """The few REST calls a scenario needs."""

    def __init__(self, url: str, key: str | None, timeout: float = 10.0) -> None:
        headers = {"X-API-Key": key} if key else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self.url = url

    def get(self, path: str, **params: Any) -> Any:
        params = {k: v for k, v in params.items() if v is not None}
        try:
            resp = self.http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise ScenarioError(f"API {self.url} unreachable: {exc}") from None
        if resp.status_code >= 400:
            raise ScenarioError(f"GET {path} → {resp.status_code}: {resp.text[:200]}")
        return resp.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        try:
            resp = self.http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise ScenarioError(f"API {self.url} unreachable: {exc}") from None
        if resp.status_code >= 400:
            raise ScenarioError(f"POST {path} → {resp.status_code}: {resp.text[:200]}")
        return resp.json()

    def alarms(self, device: str, rule: str) -> list[dict[str, Any]]:
        rows = self.get("/alarms", status="all", device_id=device, rule=rule, limit=1000)
        return [a for a in rows if a["rule"] == rule]

    def events(self, params: dict[str, Any], cap: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.get("/events", limit=1000, cursor=cursor, **params)
            rows += page["data"]
            cursor = page["next_cursor"]
            if cursor is None or len(rows) >= cap:
                return rows

    def count_events(self, params: dict[str, Any], cap: int) -> int:
        n, cursor = 0, None
        while True:
            page = self.get("/events", limit=1000, cursor=cursor, **params)
            n += len(page["data"])
            cursor = page["next_cursor"]
            if cursor is None or n > cap:
                return n

    def close(self) -> None:
        self.http.close()


@dataclass
class Verdict:
    """The outcome of one expectation."""

    name: str
    expected: str
    passed: bool | None = None  # None: still open
    seen: str = "nothing yet"
    elapsed_s: float = 0.0

    @property
    def message(self) -> str:
        return f"expected {self.expected}; seen {self.seen}"


# A check polls the API once: (satisfied, definitely failed, what it saw).
Probe = Callable[[], tuple[bool, bool, str]]
Watched = tuple[Expectation, Probe, Verdict]  # an expectation, how to check it, its verdict


def _describe(e: Expectation) -> str:
    c = e.check
    after = f" after step {e.after!r}" if e.after else ""
    if isinstance(c, ExpectAlarm):
        return f"alarm {c.rule!r} {c.state} on {c.device} within {c.within:g} s{after}"
    if isinstance(c, ExpectTwin):
        return f"{c.device}.{c.field} {c.op} {c.value!r} within {c.within:g} s{after}"
    if isinstance(c, ExpectEvents):
        matching = f"{c.channel} matching {_event_filter_text(c)}"
        return f"{_bounds(c.at_least, c.at_most)} {matching} within {c.within:g} s{after}"
    if isinstance(c, ExpectShare):
        where = f" {c.where}" if c.where else ""
        return (
            f"at least {c.at_least:.0%} of {c.type}{where} events with {c.field} {c.op} "
            f"{c.value!r} (of at least {c.min_count}) within {c.within:g} s{after}"
        )
    if isinstance(c, ExpectDevices):
        kind = f" {c.kind}" if c.kind else ""
        test = f"{c.field} {c.op} {c.value!r}"
        return f"{_bounds(c.at_least, c.at_most)}{kind} devices with {test} within {c.within:g} s"
    statuses = c.status if isinstance(c.status, list) else [c.status]
    return f"command of step {c.step!r} ends {' or '.join(statuses)} within {c.within:g} s{after}"


def _bounds(at_least: int | None, at_most: int | None) -> str:
    parts = [
        *([f"at least {at_least}"] if at_least is not None else []),
        *([f"at most {at_most}"] if at_most is not None else []),
    ]
    return " and ".join(parts)


def _event_filter_text(c: ExpectEvents) -> str:
    parts = [
        f"{k}={v}"
        for k, v in (
            ("device", c.device),
            ("kind", c.kind),
            ("type", c.type),
            ("injected", c.injected),
        )
        if v is not None
    ]
    if c.this_run:
        parts.append("run_id=<this run>")
    return "{" + ", ".join(parts) + "}"


def _dig(obj: Any, path: str) -> tuple[bool, Any]:
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return False, None
        obj = obj[part]
    return True, obj


@dataclass
class Run:
    """State of one run of a scenario."""

    scenario: Scenario
    api: Api
    devices: DevicePublishers
    run_id: str = field(default_factory=new_run_id)
    log: Callable[[str], None] = print
    started: float = 0.0
    step_times: dict[str, float] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)  # step id -> command id
    alarm_snapshot: dict[tuple[str, str], dict[int, dict[str, Any]]] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    link: SimulatorLink | None = None  # opened by the first drill step
    # Set by stop(): ends the timeline's waits at once. `_halt` ends the expectation watcher
    # (also set when a step fails, which is not an operator's stop).
    _stop_requested: threading.Event = field(
        default_factory=threading.Event, init=False, repr=False
    )
    _halt: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    # -- stopping --------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask a run (in another thread) to end: no further step is played, the watcher stops
        polling, and every undecided expectation fails as stopped by the operator."""
        self._stop_requested.set()
        self._halt.set()

    @property
    def stopped(self) -> bool:
        return self._stop_requested.is_set()

    # -- expectations ----------------------------------------------------------------------
    def _snapshot_alarms(self) -> None:
        for e in self.scenario.expect:
            if e.alarm is not None:
                key = (e.alarm.device, e.alarm.rule)
                if key not in self.alarm_snapshot:
                    rows = self.api.alarms(*key)
                    self.alarm_snapshot[key] = {a["id"]: a for a in rows}

    def _probe(self, e: Expectation) -> Probe:
        c = e.check
        if isinstance(c, ExpectAlarm):
            return lambda: self._probe_alarm(c)
        if isinstance(c, ExpectTwin):
            return lambda: self._probe_twin(c)
        if isinstance(c, ExpectEvents):
            return lambda: self._probe_events(c)
        if isinstance(c, ExpectShare):
            return lambda: self._probe_share(c, e.after)
        if isinstance(c, ExpectDevices):
            return lambda: self._probe_devices(c)
        return lambda: self._probe_command(c)

    def _wall(self, step: str | None) -> datetime:
        """When the step ran (or the run started), on the wall clock."""
        at = self.step_times.get(step, self.started) if step else self.started
        return datetime.now(UTC) - timedelta(seconds=time.monotonic() - at)

    def _probe_share(self, c: ExpectShare, after: str | None) -> tuple[bool, bool, str]:
        params = {
            "device_id": c.device,
            "kind": c.kind,
            "type": c.type,
            "since": self._wall(after).isoformat(),
        }
        rows = self.api.events(params, cap=SHARE_CAP)
        rows = [r for r in rows if all(r["data"].get(k) == v for k, v in c.where.items())]
        hits = 0
        for r in rows:
            found, value = _dig(r["data"], c.field)
            hits += found and compare(value, c.op, c.value)
        n = len(rows)
        share = hits / n if n else 0.0
        return n >= c.min_count and share >= c.at_least, False, f"{hits} of {n} ({share:.0%})"

    def _probe_devices(self, c: ExpectDevices) -> tuple[bool, bool, str]:
        twins = self.api.get("/devices", kind=c.kind)["data"]
        n = 0
        for twin in twins:
            found, value = _dig(twin, c.field)
            n += found and compare(value, c.op, c.value)
        ok = (c.at_least is None or n >= c.at_least) and (c.at_most is None or n <= c.at_most)
        return ok, False, f"{n} of {len(twins)} devices"

    def _probe_alarm(self, c: ExpectAlarm) -> tuple[bool, bool, str]:
        before = self.alarm_snapshot.get((c.device, c.rule), {})
        rows = self.api.alarms(c.device, c.rule)
        for a in rows:
            old = before.get(a["id"])
            if c.state == "raised" and (old is None or a["occurrences"] > old["occurrences"]):
                how = "raised" if old is None else f"occurrence #{a['occurrences']} of an open one"
                return True, False, f"alarm #{a['id']} {how} (now {a['status']})"
            if (
                c.state == "cleared"
                and a["status"] == AlarmStatus.CLEARED
                and (old is None or old["status"] != AlarmStatus.CLEARED)
            ):
                return True, False, f"alarm #{a['id']} cleared ({a.get('clear_reason')})"
        opened = [f"#{a['id']} {a['status']}" for a in rows if a["status"] != AlarmStatus.CLEARED]
        if c.state == "raised":
            return False, False, f"no new {c.rule!r} alarm on {c.device} (open: {opened or 'none'})"
        return False, False, f"no {c.rule!r} alarm cleared on {c.device} (open: {opened or 'none'})"

    def _probe_twin(self, c: ExpectTwin) -> tuple[bool, bool, str]:
        twin = self.api.get(f"/devices/{c.device}")
        found, value = _dig(twin, c.field)
        if not found:
            return False, False, f"{c.field} absent from the twin"
        return compare(value, c.op, c.value), False, f"{c.field} = {value!r}"

    def _probe_events(self, c: ExpectEvents) -> tuple[bool, bool, str]:
        params = {
            "device_id": c.device,
            "kind": c.kind,
            "type": c.type,
            "channel": c.channel,
            "injected": None if c.injected is None else str(c.injected).lower(),
            "run_id": self.run_id if c.this_run else None,
        }
        cap = max(c.at_least or 0, c.at_most or 0)
        n = self.api.count_events(params, cap)
        ok = (c.at_least is None or n >= c.at_least) and (c.at_most is None or n <= c.at_most)
        # With an upper bound the count is only final at the deadline; over it is final now.
        failed = c.at_most is not None and n > c.at_most
        return ok, failed, f"{n} matching"

    def _probe_command(self, c: ExpectCommand) -> tuple[bool, bool, str]:
        command_id = self.commands.get(c.step)
        if command_id is None:
            return False, False, "the command was not sent"
        row = self.api.get(f"/commands/{command_id}")
        wanted = c.status if isinstance(c.status, list) else [c.status]
        status = row["status"]
        seen = f"command {command_id} {status}" + (
            f" ({row['reason']})" if row.get("reason") else ""
        )
        return status in wanted, status in FINAL_STATUSES and status not in wanted, seen

    def _implicit(self) -> list[Expectation]:
        """Command steps with `expect` become command expectations after the step."""
        out = []
        for s in self.scenario.steps:
            if s.command is not None and s.command.expect is not None:
                assert s.id is not None
                out.append(
                    Expectation(
                        name=f"command {s.command.name} on {s.command.device}",
                        after=s.id,
                        command=ExpectCommand(
                            step=s.id, status=s.command.expect, within=s.command.within
                        ),
                    )
                )
        return out

    def _watch(self, pending: list[Watched], stop: threading.Event, done: threading.Event) -> None:
        while pending and not stop.is_set():
            now = time.monotonic()
            still = []
            for e, probe, verdict in pending:
                if e.after is not None and e.after not in self.step_times:
                    if done.is_set():
                        verdict.passed, verdict.seen = False, f"step {e.after!r} never ran"
                        continue
                    still.append((e, probe, verdict))
                    continue
                start = self.step_times.get(e.after, self.started) if e.after else self.started
                deadline = start + e.check.within
                at_deadline = now >= deadline
                try:
                    ok, failed, seen = probe()
                except ScenarioError as exc:
                    ok, failed, seen = False, False, f"error: {exc}"
                except Exception as exc:  # e.g. the API's connection: not final, probe again
                    ok, failed, seen = False, False, f"error: {type(exc).__name__}: {exc}"
                verdict.seen, verdict.elapsed_s = seen, now - start
                waits_for_deadline = (
                    isinstance(e.check, ExpectEvents) and e.check.at_most is not None
                )
                if failed:
                    verdict.passed = False
                elif ok and (not waits_for_deadline or at_deadline):
                    verdict.passed = True
                elif at_deadline:
                    verdict.passed = False
                if verdict.passed is None:
                    still.append((e, probe, verdict))
                else:
                    mark = "[green]✔[/]" if verdict.passed else "[red]✘[/]"
                    self.log(f"{mark} {verdict.name}: {verdict.seen} (+{verdict.elapsed_s:.1f} s)")
            pending = still
            stop.wait(POLL_S)

    # -- timeline --------------------------------------------------------------------------
    def _do(self, step: Step) -> None:
        now = datetime.now(UTC)
        if step.inject is not None or step.telemetry is not None:
            spec = step.inject or step.telemetry
            assert spec is not None
            channel = Channel.EVENTS if step.inject is not None else Channel.TELEMETRY
            event_type = step.inject.type if step.inject is not None else "telemetry"
            data = render(spec.data, self.run_id, now)
            corr = render(spec.correlation_id, self.run_id, now)
            env, _topic = self.devices.inject(
                spec.device,
                event_type,
                data,
                channel=channel,
                correlation_id=corr,
                run_id=self.run_id,
                ts=now + timedelta(seconds=spec.ts_offset_s),
            )
            self.log(f"inject {channel.value} {env.type} → {spec.device} ({env.event_id})")
        elif step.command is not None:
            c = step.command
            body = {"name": c.name, "params": render(c.params, self.run_id, now)}
            row = self.api.post(f"/devices/{c.device}/commands", body)
            if step.id:
                self.commands[step.id] = row["command_id"]
            self.log(f"command {c.name} → {c.device} ({row['command_id']}, {row['status']})")
        elif (drill := step.drill) is not None:  # (pauses are execute's: they can be stopped)
            self._drill(drill)

    def _drill(self, drill: DrillStep) -> None:
        """A fault, network trouble, an outage or a load change, applied by the simulator."""
        action = drill.action_part()
        target = Target.model_validate(drill.model_dump(include=set(Target.model_fields)))
        if self.link is None:
            self.link = SimulatorLink(self.devices.conn)
        devices = self.link.resolve(target)
        self.link.send(devices, action, self.run_id)
        what = getattr(drill, "fault", None) or drill.action
        shown = ", ".join(devices[:3]) + (f" +{len(devices) - 3}" if len(devices) > 3 else "")
        self.log(f"{what} → {len(devices)} device(s) ({shown}) for {drill.for_s:g} s")

    def close(self) -> None:
        """Close the drill session (the device publishers belong to the caller)."""
        if self.link is not None:
            self.link.close()
            self.link = None

    def execute(self, on_progress: Callable[[int, int], None] | None = None) -> list[Verdict]:
        self._snapshot_alarms()
        self.started = time.monotonic()
        timeline_done = threading.Event()
        # Built before the watcher starts, so a bad expectation fails here, in the open.
        pending: list[Watched] = [
            (e, self._probe(e), Verdict(e.name or _describe(e), _describe(e)))
            for e in [*self.scenario.expect, *self._implicit()]
        ]
        self.verdicts = [v for _, _, v in pending]
        watcher = threading.Thread(
            target=self._watch, args=(pending, self._halt, timeline_done), daemon=True
        )
        watcher.start()
        try:
            for i, step in enumerate(self.scenario.steps):
                # Waiting on the stop event rather than sleeping: a stop ends the wait at once.
                if step.at is not None:
                    delay = self.started + step.at - time.monotonic()
                    if delay > 0:
                        self._stop_requested.wait(delay)
                if self.stopped:
                    break
                elapsed = time.monotonic() - self.started
                self.log(f"[dim]+{elapsed:5.1f} s[/] step {i + 1} {step.id or step.action}")
                if step.wait is not None:
                    if self._stop_requested.wait(step.wait):
                        break  # interrupted: the pause did not run to its end
                else:
                    self._do(step)
                if step.id:
                    self.step_times[step.id] = time.monotonic()
                if on_progress:
                    on_progress(i + 1, len(self.scenario.steps))
        except ScenarioError as exc:
            self.errors.append(str(exc))
            self.log(f"[red]step failed:[/] {exc}")
        except Exception as exc:  # a bug or a library's surprise: still a verdict, not a crash
            self.errors.append(f"{type(exc).__name__}: {exc}")
            self.log(f"[red]step failed:[/] {type(exc).__name__}: {exc}")
        finally:
            timeline_done.set()
        if self.errors:
            self._halt.set()
        if self.stopped:
            self.log("[yellow]stopped by the operator[/]")
        watcher.join()
        for v in self.verdicts:
            if v.passed is None:
                why = "stopped by the operator" if self.stopped else "the timeline stopped"
                v.passed, v.seen = False, f"not decided ({v.seen}): {why}"
        return self.verdicts

    @property
    def ok(self) -> bool:
        return not self.errors and all(v.passed for v in self.verdicts)


def junit_xml(run: Run, path: Path, duration_s: float) -> None:
    """One testsuite per run, one testcase per expectation (a failed step is an error case)."""
    failures = sum(1 for v in run.verdicts if not v.passed)
    suite = ET.Element(
        "testsuite",
        name=run.scenario.name,
        tests=str(len(run.verdicts) + len(run.errors)),
        failures=str(failures),
        errors=str(len(run.errors)),
        time=f"{duration_s:.3f}",
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="run_id", value=run.run_id)
    for v in run.verdicts:
        case = ET.SubElement(
            suite, "testcase", classname=run.scenario.name, name=v.name, time=f"{v.elapsed_s:.3f}"
        )
        if not v.passed:
            failure = ET.SubElement(case, "failure", message=v.message, type="ExpectationFailed")
            failure.text = v.message
        else:
            ET.SubElement(case, "system-out").text = v.message
    for err in run.errors:
        case = ET.SubElement(suite, "testcase", classname=run.scenario.name, name="timeline")
        ET.SubElement(case, "error", message=err, type="StepFailed").text = err
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
