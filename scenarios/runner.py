"""Plays a scenario: its timeline (injections as the devices, commands, drills and actions on
the street's clock) while a watcher looks at the street for its expectations, then gives one
verdict per expectation. Progress goes to a sink as typed events (scenarios.progress).

Offsets, pauses and deadlines are kept on the street's clock unless a step or expectation says
`clock: wall` (scenarios.timeline follows the clock through the port)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from contracts.clock import ClockAction, speed_label
from contracts.simulation import Target
from contracts.topics import Channel
from scenarios.control import SimulatorLink
from scenarios.expectations import (
    Probe,
    Verdict,
    describe,
    implicit,
    look_alarm,
    look_command,
    look_devices,
    look_events,
    look_share,
    look_twin,
    waits_for_deadline,
)
from scenarios.model import (
    DrillStep,
    ExpectAlarm,
    Expectation,
    ExpectDevices,
    ExpectEvents,
    ExpectShare,
    ExpectTwin,
    Scenario,
    Step,
)
from scenarios.port import AlarmSeen, StreetPort
from scenarios.progress import (
    ClockSet,
    CommandSent,
    DrillSent,
    Injected,
    Sink,
    StepDone,
    StepFailed,
    StepStarted,
    Stopped,
    VerdictReached,
    ignore,
)
from scenarios.timeline import POLL_S, ClockName, Moment, StreetTimeline, shows
from scenarios.wire import DevicePublishers, ScenarioError, new_run_id, render

# How long (wall seconds) the street's clock may take to show a step's action; a jump simulates
# the skipped time first, which takes longer.
CLOCK_SETTLE_S = 10.0
JUMP_SETTLE_S = 300.0

Watched = tuple[Expectation, Probe, Verdict]  # an expectation, how to check it, its verdict


@dataclass
class Run:
    """State of one run of a scenario."""

    scenario: Scenario
    street: StreetPort  # belongs to the caller, like the device publishers
    devices: DevicePublishers
    run_id: str = field(default_factory=new_run_id)
    sink: Sink = ignore
    started: Moment | None = None
    step_times: dict[str, Moment] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)  # step id -> command id
    alarm_snapshot: dict[tuple[str, str], dict[int, AlarmSeen]] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # This run paused the street's clock (and has not resumed it): a street-time wait would
    # never end, and the run resumes it when it ends.
    paused_clock: bool = False
    link: SimulatorLink | None = None  # opened by the first drill step
    # Set by stop(): ends the timeline's waits at once. `_halt` ends the expectation watcher
    # (also set when a step fails, which is not an operator's stop).
    _stop_requested: threading.Event = field(
        default_factory=threading.Event, init=False, repr=False
    )
    _halt: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    timeline: StreetTimeline = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.timeline = StreetTimeline(self.street.clock)

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
                    rows = self.street.alarms(*key)
                    self.alarm_snapshot[key] = {a.id: a for a in rows}

    def _probe(self, e: Expectation) -> Probe:
        c, street = e.check, self.street
        if isinstance(c, ExpectAlarm):
            return lambda: look_alarm(street, c, self.alarm_snapshot.get((c.device, c.rule), {}))
        if isinstance(c, ExpectTwin):
            return lambda: look_twin(street, c)
        if isinstance(c, ExpectEvents):
            return lambda: look_events(street, c, self.run_id)
        if isinstance(c, ExpectShare):
            # Simulated events are stamped with the street's time.
            return lambda: look_share(street, c, self._moment(e.after).street)
        if isinstance(c, ExpectDevices):
            return lambda: look_devices(street, c)
        return lambda: look_command(street, c, self.commands.get(c.step))

    def _moment(self, step: str | None) -> Moment:
        """When the step ran (or the run started)."""
        assert self.started is not None
        return self.step_times.get(step, self.started) if step else self.started

    def _watch(self, pending: list[Watched], stop: threading.Event, done: threading.Event) -> None:
        while pending and not stop.is_set():
            now = self.timeline.now()
            still = []
            for e, probe, verdict in pending:
                if e.after is not None and e.after not in self.step_times:
                    if done.is_set():
                        verdict.passed, verdict.seen = False, f"step {e.after!r} never ran"
                        continue
                    still.append((e, probe, verdict))
                    continue
                elapsed = self._moment(e.after).since(now, e.clock)
                at_deadline = elapsed >= e.check.within
                try:
                    ok, failed, seen = probe()
                except ScenarioError as exc:
                    ok, failed, seen = False, False, f"error: {exc}"
                except Exception as exc:  # e.g. the API's connection: not final, probe again
                    ok, failed, seen = False, False, f"error: {type(exc).__name__}: {exc}"
                verdict.seen, verdict.elapsed_s = seen, elapsed
                if failed:
                    verdict.passed = False
                elif ok and (not waits_for_deadline(e) or at_deadline):
                    verdict.passed = True
                elif at_deadline:
                    verdict.passed = False
                if verdict.passed is None:
                    still.append((e, probe, verdict))
                else:
                    self.sink(
                        VerdictReached(
                            verdict.name, verdict.passed, verdict.seen, verdict.elapsed_s
                        )
                    )
            pending = still
            stop.wait(POLL_S)

    # -- timeline --------------------------------------------------------------------------
    def _do(self, step: Step) -> None:
        now = self.timeline.now().street  # injections and templates are in street time
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
            self.sink(Injected(channel.value, env.type, spec.device, env.event_id))
        elif step.command is not None:
            c = step.command
            sent = self.street.send_command(c.device, c.name, render(c.params, self.run_id, now))
            if step.id:
                self.commands[step.id] = sent.command_id
            self.sink(CommandSent(c.name, c.device, sent.command_id, sent.status))
        elif (drill := step.drill) is not None:  # (pauses are execute's: they can be stopped)
            self._drill(drill, step.timing)
        elif (clock := step.clock_action) is not None:
            self._clock(clock)

    def _drill(self, drill: DrillStep, timing: ClockName) -> None:
        """A fault, network trouble, an outage or a load change, applied by the simulator."""
        action = drill.action_part()
        # The simulator reads `for_s` as street seconds unless the action says `clock: wall`
        # (contracts/simulation.py); a step marked `clock: wall` says it for its drill.
        if timing == "wall" and "clock" in type(action).model_fields:
            action = action.model_copy(update={"clock": "wall"})
        target = Target.model_validate(drill.model_dump(include=set(Target.model_fields)))
        if self.link is None:
            self.link = SimulatorLink(self.devices.conn)
        devices = self.link.resolve(target)
        self.link.send(devices, action, self.run_id)
        what = getattr(drill, "fault", None) or drill.action
        self.sink(DrillSent(what, tuple(devices), drill.for_s))

    def _clock(self, action: ClockAction) -> None:
        """Ask the street's clock for `action` and wait until it shows it (a jump: until the
        street has arrived), so the step's moment and what follows are on the new clock."""
        before, _ = self.timeline.view(fresh=True)
        target = action.jump_target(before.now) if action.action == "jump" else None
        view = self.street.set_clock(action)
        self.timeline.update(view)
        settle = JUMP_SETTLE_S if target is not None else CLOCK_SETTLE_S
        deadline = time.monotonic() + settle
        while not shows(action, view, target):
            if time.monotonic() > deadline:
                raise ScenarioError(
                    f"the street's clock did not show {action.action} within {settle:g} s"
                )
            if self._stop_requested.wait(POLL_S):
                return
            view, _ = self.timeline.view(fresh=True)
        self.paused_clock = view.paused
        self.sink(ClockSet(action.action, view.now, speed_label(view.speed), view.paused))

    def _resume_clock(self) -> None:
        try:
            self.timeline.update(self.street.set_clock(ClockAction(action="resume")))
            self.paused_clock = False
        except ScenarioError as exc:
            self.errors.append(f"could not resume the street's clock it paused: {exc}")

    def _wait(self, start: Moment, seconds: float, clock: ClockName) -> bool:
        """Wait until `seconds` on `clock` have passed since `start`; False if stopped first.
        Waiting on the stop event rather than sleeping: a stop ends the wait at once."""
        if clock == "street" and self.paused_clock:
            raise ScenarioError(
                "the scenario paused the street's clock, so a wait in street time would never "
                "end: resume it first, or mark the step `clock: wall`"
            )
        while (pause := self.timeline.pause_s(start, seconds, clock)) > 0:
            if self._stop_requested.wait(pause):
                return False
        return not self.stopped

    def close(self) -> None:
        """Close the drill session (the device publishers belong to the caller)."""
        if self.link is not None:
            self.link.close()
            self.link = None

    def execute(self) -> list[Verdict]:
        """Play the timeline and decide every expectation (in this thread; stop() from another
        one). Raises ScenarioError only before the timeline starts (the street unreachable)."""
        self._snapshot_alarms()
        self.started = started = self.timeline.now()
        timeline_done = threading.Event()
        # Built before the watcher starts, so a bad expectation fails here, in the open.
        pending: list[Watched] = [
            (e, self._probe(e), Verdict(e.name or describe(e), describe(e)))
            for e in [*self.scenario.expect, *implicit(self.scenario)]
        ]
        self.verdicts = [v for _, _, v in pending]
        watcher = threading.Thread(
            target=self._watch, args=(pending, self._halt, timeline_done), daemon=True
        )
        watcher.start()
        try:
            for i, step in enumerate(self.scenario.steps):
                if step.at is not None and not self._wait(started, step.at, step.timing):
                    break
                if self.stopped:
                    break
                now = self.timeline.now()
                elapsed = started.since(now, "street")  # the log counts street seconds
                self.sink(StepStarted(i + 1, step.id or step.action, elapsed))
                if step.wait is not None:
                    if not self._wait(now, step.wait, step.timing):
                        break  # interrupted: the pause did not run to its end
                else:
                    self._do(step)
                if step.id:
                    self.step_times[step.id] = self.timeline.now()
                self.sink(StepDone(i + 1, len(self.scenario.steps)))
        except ScenarioError as exc:
            self.errors.append(str(exc))
            self.sink(StepFailed(str(exc)))
        except Exception as exc:  # a bug or a library's surprise: still a verdict, not a crash
            self.errors.append(f"{type(exc).__name__}: {exc}")
            self.sink(StepFailed(f"{type(exc).__name__}: {exc}"))
        finally:
            timeline_done.set()
            if self.paused_clock:  # a drill leaves the street's clock running, as it found it
                self._resume_clock()
        if self.errors:
            self._halt.set()
        if self.stopped:
            self.sink(Stopped())
        watcher.join()
        for v in self.verdicts:
            if v.passed is None:
                why = "stopped by the operator" if self.stopped else "the timeline stopped"
                v.passed, v.seen = False, f"not decided ({v.seen}): {why}"
        return self.verdicts

    @property
    def ok(self) -> bool:
        return not self.errors and all(v.passed for v in self.verdicts)
