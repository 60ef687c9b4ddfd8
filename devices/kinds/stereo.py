"""A leisure-area Bluetooth stereo: morning exercise, evening square dancing, quiet nights."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from pydantic import BaseModel

from contracts.envelope import Command
from contracts.kinds import stereo as contract
from contracts.topics import Channel
from devices import daily
from devices.behaviour import Behaviour, Emission, Outcome
from devices.kinds import register

GENRES = ("square-dance", "pop", "folk", "sichuan-opera", "classical", "children")
# What plays when: exercise music in the morning, dancing and opera for the elders in the
# evening, children's songs before dinner, pop late.
MORNING = (0.55, 0.05, 0.2, 0.05, 0.15, 0.0)
EVENING = (0.45, 0.2, 0.1, 0.1, 0.05, 0.1)
LATE = (0.15, 0.55, 0.15, 0.05, 0.1, 0.0)
TRACK_S = {"square-dance": (180, 300), "pop": (170, 280), "folk": (180, 320),
           "sichuan-opera": (300, 900), "classical": (240, 600), "children": (90, 180)}  # fmt: skip


@dataclass
class Phone:
    resident: str
    leave_at: datetime
    volume: int  # what this listener turns it to
    loud: bool  # ignores the quiet hours


@register
class StereoBehaviour(Behaviour):
    """Rates: sessions_per_hour, session_min, max_paired, quiet_volume_max, loud_share,
    auto_limit (1 = pull the volume down after a violation), telemetry_every_s."""

    kind = contract.KIND

    def start(self, now: datetime) -> None:
        self.quiet = daily.QUIET_HOURS
        self.limit = max(0, min(100, int(self.rate("quiet_volume_max", 35))))
        self.volume = 40
        self.paired: list[Phone] = []  # in pairing order; the first one plays
        self.playing = False
        self.genre = "pop"
        self.track_started = now
        self.track_end = now + daily.NEVER
        self.next_track = now + daily.NEVER
        self.flagged = False  # this track at this volume was already reported
        self.sessions = daily.Arrivals(
            self.rng, self.rate("sessions_per_hour", 1.5), daily.STEREO, now
        )
        self.next_telemetry = now

    def next_wakeup(self) -> datetime:
        soonest = min(self.sessions.due, self.track_end, self.next_track, self.next_telemetry)
        for phone in self.paired:
            soonest = min(soonest, phone.leave_at)
        return soonest

    def _quiet_hours(self) -> contract.QuietHours:
        return contract.QuietHours(
            start=self.quiet.start.strftime("%H:%M"), end=self.quiet.end.strftime("%H:%M")
        )

    # -- music -------------------------------------------------------------------------------
    def _stop(self, now: datetime, reason: str) -> Emission:
        played = int(min(3600, (now - self.track_started).total_seconds()))
        self.playing = False
        self.track_end = now + daily.NEVER
        stopped = contract.TrackStopped(reason=reason, played_s=max(0, played))
        return Emission(Channel.EVENTS, "track-stopped", stopped)

    def _set_volume(self, volume: int, by: str) -> list[Emission]:
        if volume == self.volume:
            return []
        change = contract.VolumeChanged(volume_from=self.volume, volume_to=volume, by=by)
        self.volume = volume
        self.flagged = False
        return [Emission(Channel.EVENTS, "volume-changed", change)]

    def _start_track(self, now: datetime) -> list[Emission]:
        rng = self.rng
        self.next_track = now + daily.NEVER
        player = self.paired[0]
        volume = player.volume
        if self.quiet.contains(now) and not player.loud:
            volume = min(volume, self.limit)  # considerate listeners turn it down after 22:00
        out = self._set_volume(volume, "user")
        hour = daily.local(now).hour
        weights = MORNING if 5 <= hour < 10 else EVENING if 16 <= hour < 22 else LATE
        self.genre = rng.choices(GENRES, weights)[0]
        lo, hi = TRACK_S[self.genre]
        duration = rng.randint(lo, hi)
        self.playing, self.flagged = True, False
        self.track_started = now
        self.track_end = now + timedelta(seconds=duration)
        started = contract.TrackStarted(genre=self.genre, duration_s=duration, volume=self.volume)
        out.append(Emission(Channel.EVENTS, "track-started", started))
        return out + self._check_quiet(now)

    def _check_quiet(self, now: datetime) -> list[Emission]:
        if not self.playing or self.flagged or self.volume <= self.limit:
            return []
        if not self.quiet.contains(now):
            return []
        self.flagged = True
        violation = contract.QuietHoursViolation(
            volume=self.volume, limit=self.limit, quiet_hours=self._quiet_hours()
        )
        out = [Emission(Channel.EVENTS, "quiet-hours-violation", violation)]
        if self.rate("auto_limit", 1) >= 1:
            # The stereo turns itself down; most listeners then leave it there.
            out += self._set_volume(self.limit, "limiter")
            if self.paired and self.rng.random() < 0.7:
                self.paired[0].volume = self.limit
        return out

    def _pair(self, now: datetime) -> list[Emission]:
        rng = self.rng
        if len(self.paired) >= max(1, int(self.rate("max_paired", 3))):
            return []  # the speaker shows "busy"; they listen instead of pairing
        quiet = self.quiet.contains(now)
        loud = rng.random() < self.rate("loud_share", 0.25)
        # Considerate listeners keep it down in quiet hours; square dancers like it loud.
        if quiet and not loud:
            volume = rng.randint(min(15, self.limit), self.limit)
        else:
            volume = rng.randint(45, 80)
        minutes = 5 + rng.expovariate(1 / max(self.rate("session_min", 40), 1))
        phone = Phone(self.population.pick(rng), now + timedelta(minutes=min(minutes, 180)),
                      volume, loud)  # fmt: skip
        self.paired.append(phone)
        data = contract.DevicePaired(resident=phone.resident, paired_count=len(self.paired))
        if not self.playing and len(self.paired) == 1:
            self.next_track = now + timedelta(seconds=rng.randint(10, 40))  # choosing a song
        return [Emission(Channel.EVENTS, "device-paired", data)]

    def _unpair(self, phone: Phone, now: datetime, reason: str) -> list[Emission]:
        out: list[Emission] = []
        was_player = self.paired and self.paired[0] is phone
        if was_player and self.playing:
            out.append(self._stop(now, "unpaired" if reason == "left" else "operator"))
        self.paired.remove(phone)
        gone = contract.DeviceUnpaired(
            resident=phone.resident, paired_count=len(self.paired), reason=reason
        )
        out.append(Emission(Channel.EVENTS, "device-unpaired", gone))
        if was_player and self.paired and not self.playing:
            self.next_track = now + timedelta(seconds=self.rng.randint(10, 40))
        return out

    # -- the schedule --------------------------------------------------------------------------
    def wake(self, now: datetime) -> list[Emission]:
        out: list[Emission] = []
        for phone in [p for p in self.paired if p.leave_at <= now]:
            out += self._unpair(phone, now, "left")
        if self.playing and now >= self.track_end:
            out.append(self._stop(now, "ended"))
            if self.paired:
                self.next_track = now + timedelta(seconds=self.rng.randint(3, 15))
        if now >= self.next_track:
            if self.paired and not self.playing:
                out += self._start_track(now)
            else:
                self.next_track = now + daily.NEVER
        if now >= self.sessions.due and self.sessions.fire(now):
            out += self._pair(now)
        out += self._check_quiet(now)  # catches music still playing when quiet hours begin
        if self.telemetry_due(now, 60):
            out.append(self._telemetry())
        return out

    def _telemetry(self) -> Emission:
        data = contract.StereoTelemetry(
            playing=self.playing,
            volume=self.volume,
            paired_count=len(self.paired),
            quiet_hours=self._quiet_hours(),
            quiet_volume_max=self.limit,
        )
        return Emission(Channel.TELEMETRY, "telemetry", data)

    def handle(self, command: Command, params: BaseModel, now: datetime) -> Outcome:
        out: list[Emission] = []
        if isinstance(params, contract.SetVolume):
            if self.quiet.contains(now) and params.volume > self.limit:
                q = self._quiet_hours()
                return Outcome.rejected(f"quiet hours {q.start}-{q.end}: "
                               f"volume at most {self.limit}")  # fmt: skip
            out = self._set_volume(params.volume, "operator")
        elif isinstance(params, contract.Stop):
            if not self.playing:
                return Outcome.rejected("nothing is playing")
            out = self._unpair(self.paired[0], now, "operator")
        elif isinstance(params, contract.SetQuietHours):
            if params.start == params.end:
                return Outcome.rejected("quiet hours must not be empty (start equals end)")
            self.quiet = daily.Window(time.fromisoformat(params.start),
                                      time.fromisoformat(params.end))  # fmt: skip
            if params.max_volume is not None:
                self.limit = params.max_volume
            self.flagged = False
            out = self._check_quiet(now)
        else:
            return Outcome.rejected(f"unsupported command {command.name}")
        return Outcome.done((*out, self._telemetry()))
