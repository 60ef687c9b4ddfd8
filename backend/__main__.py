"""`python -m backend`: serve the API (and run ingest) with uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from backend.api.app import create_app
from backend.config import get_settings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        # The live stream bounds each connection's buffers through asyncio's own transports
        # (backend/api/routes/stream.py); uvloop's and httptools' would not be reached.
        loop="asyncio",
        http="h11",
    )


if __name__ == "__main__":
    main()
