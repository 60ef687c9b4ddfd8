"""The simulator's steerable clock (devices/clock.py), the `--start` forms, and how `stack up`
hands --speed/--seed/--start to the simulator."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from contracts.vocabulary import STREET_TZ
from devices.__main__ import app as devices_cli
from devices.clock import SimClock, parse_start
from stack.__main__ import app as stack_cli
from stack.__main__ import devices_args

START = datetime(2026, 11, 23, 8, 0, tzinfo=STREET_TZ)


def test_pause_resume_speed_and_jump_re_anchor_the_clock() -> None:
    clock = SimClock(START, 3600)
    clock.begin()
    v0 = clock.version
    clock.pause()
    paused_at = clock.now()
    assert clock.paused and clock.version > v0 and paused_at >= START
    # Paused: the street catches up to the paused instant, and never goes past it.
    assert clock.monotonic_at(paused_at) <= time.monotonic()
    assert math.isinf(clock.monotonic_at(paused_at + timedelta(microseconds=1)))
    assert clock.now() == paused_at
    clock.resume()
    assert not clock.paused and clock.now() >= paused_at
    assert clock.street0 == paused_at
    # A new speed takes over from the current instant.
    clock.set_speed(60)
    here = clock.street0
    assert clock.speed == 60 and here >= paused_at
    # A jump re-anchors at its target; paused before, paused after.
    target = START + timedelta(hours=5)
    clock.pause()
    clock.jump(target)
    assert clock.paused and clock.now() == target
    # Max: a virtual clock the runner moves; set from a number, it keeps the instant.
    clock.set_speed(None)
    assert clock.max_speed and not clock.paused and clock.now() == target
    clock.advance(target + timedelta(hours=1))
    clock.set_speed(10)
    assert clock.street0 == target + timedelta(hours=1)


def test_start_forms() -> None:
    now = datetime(2026, 11, 23, 2, 0, tzinfo=STREET_TZ)  # 02:00 in Chongqing: night
    assert parse_start(None, now) is None and parse_start("now", now) is None
    # The demo: the next 08:00 at night, the real clock by day.
    assert parse_start("demo", now) == datetime(2026, 11, 23, 8, 0, tzinfo=STREET_TZ)
    late = datetime(2026, 11, 23, 23, 0, tzinfo=STREET_TZ)
    assert parse_start("demo", late) == datetime(2026, 11, 24, 8, 0, tzinfo=STREET_TZ)
    assert parse_start("demo", datetime(2026, 11, 23, 15, 0, tzinfo=STREET_TZ)) is None
    # A time of day: the next one, Chongqing time.
    assert parse_start("07:30", now) == datetime(2026, 11, 23, 7, 30, tzinfo=STREET_TZ)
    assert parse_start("01:00", now) == datetime(2026, 11, 24, 1, 0, tzinfo=STREET_TZ)
    # ISO: Chongqing time unless it has an offset; a date alone is midnight.
    assert parse_start("2026-11-23") == datetime(2026, 11, 23, tzinfo=STREET_TZ)
    assert parse_start("2026-11-23T07:00+00:00") == datetime(2026, 11, 23, 7, tzinfo=UTC)
    for bad in ("soon", "25:00", "2026-13-01"):
        with pytest.raises(ValueError):
            parse_start(bad, now)


def test_stack_up_hands_speed_seed_and_start_to_the_simulator() -> None:
    assert devices_args("60", 7, "2026-11-23T07:00") == [
        "--speed", "60", "--seed", "7", "--start", "2026-11-23T07:00:00+08:00",
    ]  # fmt: skip
    assert devices_args("max", None, "now") == ["--speed", "max", "--start", "now"]
    args = devices_args("1", None, "07:30")
    at = datetime.fromisoformat(args[-1]).astimezone(STREET_TZ)
    assert args[:-1] == ["--speed", "1", "--start"] and (at.hour, at.minute) == (7, 30)
    assert datetime.fromisoformat(args[-1]) > datetime.now(UTC)
    with pytest.raises(ValueError):
        devices_args("1", None, "whenever")
    # Both commands document the forms; the simulator's parser accepts what `up` passes on.
    up_help = CliRunner().invoke(stack_cli, ["up", "--help"], terminal_width=200).output
    run_help = CliRunner().invoke(devices_cli, ["run", "--help"], terminal_width=200).output
    for usage in (up_help, run_help):
        assert "--seed" in usage and "--start" in usage and "demo" in usage
    assert "LIJIA_START" in run_help and "LIJIA_SPEED" in run_help and "LIJIA_SEED" in run_help
    refused = CliRunner().invoke(stack_cli, ["up", "--start", "whenever"])
    assert refused.exit_code != 0 and "--start" in refused.output
