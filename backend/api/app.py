"""The FastAPI application: wiring of routers, lifespan (street clock, publisher, ingest, upkeep),
safety."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.fleet import load_fleet
from backend import maintenance, twins
from backend.alarms import AlarmEngine
from backend.api.body_limit import BodyLimit
from backend.api.context import AppContext
from backend.api.drills import BackendStreet
from backend.api.gate import gate
from backend.api.openapi import install as install_openapi
from backend.api.routes import (
    alarms,
    clock,
    commands,
    contract,
    devices,
    events,
    health,
    quality,
    scenarios,
    stats,
    stream,
)
from backend.config import Settings, get_settings
from backend.db import init_db, make_engine, provision
from backend.ingest import Ingest
from backend.live import Broadcaster, StreamLimits, alarm_message
from backend.metrics import LijiaCollector
from backend.publisher import Publisher
from backend.scenario_jobs import ScenarioJobs
from backend.street_clock import StreetClock
from contracts.stream import ClockMessage

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 3600.0
# How long ingest waits at start for the clock's retained announcements (wall seconds): a
# backlog judged against wall time instead of a simulator's street time would look skewed.
CLOCK_READY_S = 3.0


async def _upkeep(ctx: AppContext) -> None:
    """Once a second: command time-outs (wall clock), silent devices and offline alarms (street
    clock); hourly (wall): retention (street clock)."""
    s = ctx.settings
    next_purge = 0.0
    while True:
        await asyncio.sleep(1)
        try:
            now = ctx.clock.now()
            await asyncio.to_thread(
                maintenance.expire_commands, ctx.engine, s.command_timeout_s, now
            )
            silent = await asyncio.to_thread(
                twins.mark_silent,
                ctx.engine,
                s.silent_after_s,
                now,
                ctx.clock.continuous_since(),
            )
            for message in silent:
                ctx.live.publish(message)
            for change in await asyncio.to_thread(maintenance.sweep_alarms, ctx.engine, ctx.alarms):
                ctx.live.publish(alarm_message(change))
            if time.monotonic() >= next_purge:
                next_purge = time.monotonic() + RETENTION_EVERY_S
                await asyncio.to_thread(
                    maintenance.purge_personal, ctx.engine, s.retention_days, now
                )
        except Exception:
            log.exception("upkeep failed; retrying in a second")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    registry = CollectorRegistry()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        init_db(engine)
        provision(engine, load_fleet(settings.fleet_file, settings.fleet_size))
        live = Broadcaster(StreamLimits.of(settings))
        live.bind(asyncio.get_running_loop())
        street = StreetClock()
        street.on_change(lambda view: live.publish(ClockMessage(clock=view)))
        alarm_engine = AlarmEngine(
            offline_after_s=settings.offline_alarm_after_s,
            now=street.now,
            continuous_since=street.continuous_since,
        )
        ingest = Ingest(
            settings, engine, on_batch=live.publish_batch, alarms=alarm_engine, clock=street
        )
        publisher = Publisher(settings, street)
        street.bind(publisher.publish_control)
        ctx = AppContext(settings, engine, ingest, publisher, alarm_engine, live, street)
        registry.register(LijiaCollector(ctx))
        ctx.publisher.start()
        # The clock first: the retained announcements arrive right after the subscription.
        await asyncio.to_thread(street.ready.wait, CLOCK_READY_S)
        ctx.ingest.start()
        app.state.ctx = ctx
        app.state.scenario_jobs = ScenarioJobs(
            settings, lambda: BackendStreet(ctx), clock=street.now
        )
        upkeep = asyncio.create_task(_upkeep(ctx))
        try:
            yield
        finally:
            upkeep.cancel()
            # Runs first: they publish through the broker and use the database.
            await asyncio.to_thread(app.state.scenario_jobs.shutdown)
            ctx.publisher.stop()
            ctx.ingest.stop()
            engine.dispose()

    app = FastAPI(
        title="Lijia Street operations API",
        version="0.1.0",
        description="Devices, events, alarms, commands, statistics and health of Lijia Street.",
        lifespan=lifespan,
        # Before every route: the read key, single-valued query parameters, no duplicate keys.
        dependencies=[Depends(gate)],
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["X-API-Key", "Content-Type"],
    )

    # Added last, so it runs first: nothing reads a body before the limit has been applied.
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            # Starlette names the methods of the first route whose path matched; the answer
            # names those of every route with this path.
            exc.headers = {"Allow": ", ".join(allowed_methods(app, request.url.path))}
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI echoes the submitted input by default; ours names the fields only, because a
        # body may carry personal data.
        errors = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type")}
            for err in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # The CSV export's path (/events.csv) must be matched before /events/{event_id}.
    app.include_router(events.csv_router)
    for module in (
        health,
        clock,
        devices,
        events,
        commands,
        alarms,
        stats,
        quality,
        stream,
        contract,
        scenarios,
    ):
        app.include_router(module.router)
    install_openapi(app, settings)
    return app


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    methods: set[str] = set()
    for context in iter_route_contexts(app.routes):
        regex = getattr(context, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(context.methods or ())
    return sorted(methods)
