"""Scenarios (drills) from the API: list the shipped ones, start one (shipped or inline), follow
its progress and verdicts, stop it. The runs live in the backend process (backend.scenario_jobs).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as FastPath
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.api.deps import Operator
from backend.scenario_jobs import ScenarioBusy, ScenarioJob, ScenarioJobs, Source
from contracts.envelope import Token
from contracts.vocabulary import RunStatus

# The engine's own wording of an expectation, so the list reads like a run's verdicts.
from scenarios.expectations import describe
from scenarios.model import Scenario

router = APIRouter(prefix="/scenarios", tags=["scenarios"])

RunId = Annotated[str, FastPath(min_length=1, max_length=64)]


def get_jobs(request: Request) -> ScenarioJobs:
    jobs: ScenarioJobs = request.app.state.scenario_jobs
    return jobs


JobsDep = Annotated[ScenarioJobs, Depends(get_jobs)]


class ShippedScenario(BaseModel):
    name: str
    description: str
    steps: int = Field(description="number of steps in the timeline")
    expectations: list[str] = Field(description="what the run checks, one line each")
    scenario: Scenario = Field(description="the whole scenario, as in its YAML file")


class RunRequest(BaseModel):
    """Exactly one of `name` (a shipped scenario) or `scenario` (one written inline)."""

    model_config = ConfigDict(extra="forbid")
    name: Token | None = Field(default=None, description="a shipped scenario (GET /scenarios)")
    scenario: Scenario | None = Field(
        default=None, description="a scenario in the file format (scenarios/schema.json)"
    )

    @model_validator(mode="after")
    def _one(self) -> RunRequest:
        if (self.name is None) == (self.scenario is None):
            raise ValueError("give exactly one of: name, scenario")
        return self


class VerdictPublic(BaseModel):
    name: str
    expected: str
    passed: bool | None = Field(description="null while the expectation is still open")
    seen: str
    elapsed_s: float


class ScenarioRunPublic(BaseModel):
    run_id: str = Field(description="also on every event the run injected: GET /events?run_id=")
    name: str
    source: Source
    status: RunStatus
    stop_requested: bool
    started_at: datetime
    ended_at: datetime | None
    steps_done: int
    steps_total: int
    verdicts: list[VerdictPublic]
    error: str | None = Field(description="why the run could not be carried out (status error)")
    log: list[str] = Field(description="the run's progress lines, oldest first (the last 500)")


def _public(job: ScenarioJob) -> ScenarioRunPublic:
    return ScenarioRunPublic(
        run_id=job.id,
        name=job.scenario.name,
        source=job.source,
        status=job.status,
        stop_requested=job.run.stopped,
        started_at=job.started_at,
        ended_at=job.ended_at,
        steps_done=job.steps_done,
        steps_total=job.steps_total,
        verdicts=[
            VerdictPublic(
                name=v.name,
                expected=v.expected,
                passed=v.passed,
                seen=v.seen,
                elapsed_s=round(v.elapsed_s, 3),
            )
            for v in job.verdicts
        ],
        error=job.error,
        log=job.log_lines,
    )


@router.get("", response_model=list[ShippedScenario])
def list_shipped(jobs: JobsDep) -> list[ShippedScenario]:
    """The scenarios shipped in scenarios/drills/, by name."""
    return [
        ShippedScenario(
            name=sc.name,
            description=sc.description.strip(),
            steps=len(sc.steps),
            expectations=[e.name or describe(e) for e in sc.expect],
            scenario=sc,
        )
        for sc in sorted(jobs.shipped().values(), key=lambda s: s.name)
    ]


@router.post(
    "/runs",
    response_model=ScenarioRunPublic,
    status_code=201,
    responses={404: {"description": "no such shipped scenario"}, 409: {"description": "busy"}},
)
def start_run(body: RunRequest, jobs: JobsDep, _scope: Operator) -> Any:
    """Start a run in the background; follow it with GET /scenarios/runs/{run_id}."""
    scenario: Scenario
    source: Source
    if body.scenario is not None:
        scenario, source = body.scenario, "inline"
        problems = jobs.check_payloads(scenario)
        if problems:
            # The shape of FastAPI's validation errors, without the submitted values.
            detail = [
                {"loc": ["body", "scenario", *loc], "msg": msg, "type": "scenario_refused"}
                for loc, msg in problems
            ]
            return JSONResponse({"detail": detail}, status_code=422)
    else:
        found = jobs.shipped().get(str(body.name))
        if found is None:
            raise HTTPException(404, "no such shipped scenario (see GET /scenarios)")
        scenario, source = found, "shipped"
    try:
        job = jobs.start(scenario, source)
    except ScenarioBusy as exc:
        raise HTTPException(409, str(exc)) from None
    return _public(job)


@router.get("/runs", response_model=list[ScenarioRunPublic])
def list_runs(jobs: JobsDep) -> list[ScenarioRunPublic]:
    """The runs of this backend process, newest first (running ones and the last 20 ended)."""
    return [_public(j) for j in jobs.list()]


@router.get("/runs/{run_id}", response_model=ScenarioRunPublic)
def get_run(run_id: RunId, jobs: JobsDep) -> ScenarioRunPublic:
    job = jobs.get(run_id)
    if job is None:
        raise HTTPException(404, "no such run in this backend process")
    return _public(job)


@router.post("/runs/{run_id}/stop", response_model=ScenarioRunPublic)
def stop_run(run_id: RunId, jobs: JobsDep, _scope: Operator) -> ScenarioRunPublic:
    """Stop a run: no further step is played and undecided expectations fail as stopped by the
    operator. Stopping a run that has ended changes nothing."""
    job = jobs.get(run_id)
    if job is None:
        raise HTTPException(404, "no such run in this backend process")
    return _public(jobs.stop(job))
