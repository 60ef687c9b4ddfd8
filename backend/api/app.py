"""The FastAPI application: wiring of routers, lifespan (ingest, publisher), safety middleware."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from backend.api.context import AppContext
from backend.api.routes import commands, contract, devices, events, health
from backend.config import Settings, get_settings
from backend.db import init_db, make_engine, provision
from backend.ingest import Ingest
from backend.publisher import Publisher
from contracts.fleet import load_fleet

log = logging.getLogger(__name__)


async def _expire_loop(ctx: AppContext) -> None:
    while True:
        await asyncio.sleep(1)
        try:
            await asyncio.to_thread(
                commands.expire_commands, ctx.engine, ctx.settings.command_timeout_s
            )
        except Exception:
            log.exception("command expiry failed")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        init_db(engine)
        provision(engine, load_fleet(settings.fleet_file))
        ctx = AppContext(settings, engine, Ingest(settings, engine), Publisher(settings))
        ctx.ingest.start()
        ctx.publisher.start()
        app.state.ctx = ctx
        expiry = asyncio.create_task(_expire_loop(ctx))
        try:
            yield
        finally:
            expiry.cancel()
            ctx.publisher.stop()
            ctx.ingest.stop()
            engine.dispose()

    app = FastAPI(
        title="Lijia Street operations API",
        version="0.1.0",
        description="Devices, events, commands and health of the simulated Lijia Street.",
        lifespan=lifespan,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["X-API-Key", "Content-Type"],
    )

    @app.middleware("http")
    async def limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length and (not length.isdigit() or int(length) > settings.max_body_bytes):
            return JSONResponse({"detail": "request body too large"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI echoes the submitted input by default; ours names the fields only, because a
        # body may carry personal data.
        errors = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type")}
            for err in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    for module in (health, devices, events, commands, contract):
        app.include_router(module.router)
    return app
