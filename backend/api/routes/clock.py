"""The street's clock: read it (`GET /clock`), steer it (`POST /clock`: pause, resume, speed,
jump), forwarded to every running simulator (backend/street_clock.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from backend.api.deps import CtxDep, Operator
from backend.api.schemas import ClockChanged
from backend.street_clock import ClockControlFailed
from contracts.clock import ClockAction, ClockView

router = APIRouter(tags=["clock"])

_REASON: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "refused, `detail` says why: no simulator is running (street time is "
        "wall time), the action does not apply now (e.g. pause, resume or jump at 'max', a "
        "jump backwards or further than 7 days), or a simulator refused it"
    },
    503: {"description": "the broker did not take the control"},
    504: {"description": "not every running simulator acknowledged in time (5 wall seconds)"},
}


@router.get("/clock", response_model=ClockView)
def get_clock(ctx: CtxDep) -> ClockView:
    """The street's time as the backend follows it: the simulators' announced clock, or wall
    time (`source: wall`) when none runs."""
    return ctx.clock.view()


@router.post("/clock", response_model=ClockChanged, responses=_REASON)
def set_clock(action: ClockAction, ctx: CtxDep, _scope: Operator) -> ClockChanged:
    """Pause, resume, change speed (a number or "max") or jump forward (`to` an instant or
    `at` a street time of day: the next one). Answers once every running simulator has
    applied it, with the clock as it is then."""
    try:
        change = ctx.clock.control(action)
    except ClockControlFailed as exc:
        raise HTTPException(exc.status, exc.reason) from None
    return ClockChanged(clock=change.clock, acks=change.acks)
