"""Engine and sessions: SQLite (WAL) by default, PostgreSQL by URL; the registry from the fleet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine, select

from backend import models
from contracts.fleet import Fleet


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 5})

        @sa_event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the API read while ingest writes; NORMAL is durable across app crashes.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str = "") -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def init_db(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic), on SQLite and PostgreSQL alike."""
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def provision(engine: Engine, fleet: Fleet) -> None:
    """Make every fleet device known, keeping twin state of devices already there."""
    with Session(engine) as session:
        known = {d.device_id: d for d in session.exec(select(models.Device)).all()}
        for spec in fleet.devices:
            row = known.get(spec.id) or models.Device(
                device_id=spec.id,
                kind=spec.kind,
                name_en=spec.name_en,
                name_zh=spec.name_zh,
                x=spec.position.x,
                y=spec.position.y,
            )
            row.kind, row.name_en, row.name_zh = spec.kind, spec.name_en, spec.name_zh
            row.x, row.y = spec.position.x, spec.position.y
            session.add(row)
        session.commit()
