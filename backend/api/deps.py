"""Dependencies for routes: the app context, a database session, API-key scopes."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlmodel import Session

from backend.api.context import AppContext
from backend.config import Scope

SCOPE_RANK: dict[str, int] = {"read": 0, "operate": 1, "admin": 2}


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


def get_session(ctx: CtxDep) -> Iterator[Session]:
    with Session(ctx.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def _scope_of(ctx: AppContext, presented: str) -> str | None:
    # Compare against every key in constant time, so timing reveals nothing about near misses.
    found = None
    for key, scope in ctx.settings.api_keys.items():
        if hmac.compare_digest(key.encode(), presented.encode()):
            found = scope
    return found


# Writes are rate-limited per key (moving window, in memory: per backend process).
_limiter = MovingWindowRateLimiter(MemoryStorage())


def require_scope(needed: Scope) -> Callable[..., str]:
    def check(
        ctx: CtxDep, x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None
    ) -> str:
        if not x_api_key:
            raise HTTPException(401, "missing X-API-Key header")
        scope = _scope_of(ctx, x_api_key)
        if scope is None:
            raise HTTPException(401, "unknown API key")
        if SCOPE_RANK[scope] < SCOPE_RANK[needed]:
            raise HTTPException(403, f"this key's scope is {scope!r}; {needed!r} is needed")
        # Keyed by a digest: the key itself is never kept outside the settings.
        who = hashlib.sha256(x_api_key.encode()).hexdigest()[:16]
        if not _limiter.hit(parse(ctx.settings.write_rate_limit), "writes", who):
            raise HTTPException(
                429,
                f"too many writes: at most {ctx.settings.write_rate_limit} per key",
                headers={"Retry-After": "1"},
            )
        return scope

    return check


Operator = Annotated[str, Depends(require_scope("operate"))]
