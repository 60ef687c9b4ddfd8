"""Dependencies for routes: the app context, a database session, API-key scopes."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader
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


# The key as OpenAPI declares it (a security scheme), read without FastAPI's own 403: a missing
# key is our 401.
api_key_header = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    auto_error=False,
    description="an API key (LIJIA_API_KEYS); its scope is read, operate or admin",
)
KeyDep = Annotated[str | None, Security(api_key_header)]

# Writes are rate-limited per key (moving window, in memory: per backend process).
_limiter = MovingWindowRateLimiter(MemoryStorage())


def authorize(ctx: AppContext, presented: str | None, needed: Scope) -> str:
    """The key's scope if it is at least `needed`; 401 without a known key, 403 below it."""
    if not presented:
        raise HTTPException(401, "missing X-API-Key header")
    scope = _scope_of(ctx, presented)
    if scope is None:
        raise HTTPException(401, "unknown API key")
    if SCOPE_RANK[scope] < SCOPE_RANK[needed]:
        raise HTTPException(403, f"this key's scope is {scope!r}; {needed!r} is needed")
    return scope


def require_scope(needed: Scope) -> Callable[..., str]:
    """A route's dependency: a key of scope `needed` or more; writes are rate-limited per key."""

    def check(ctx: CtxDep, x_api_key: KeyDep = None) -> str:
        scope = authorize(ctx, x_api_key, needed)
        # Keyed by a digest: the key itself is never kept outside the settings.
        who = hashlib.sha256(str(x_api_key).encode()).hexdigest()[:16]
        if not _limiter.hit(parse(ctx.settings.write_rate_limit), "writes", who):
            raise HTTPException(
                429,
                f"too many writes: at most {ctx.settings.write_rate_limit} per key",
                headers={"Retry-After": "1"},
            )
        return scope

    # Read by backend/api/openapi.py: the statuses this dependency can answer with.
    check.needed_scope = needed  # type: ignore[attr-defined]
    return check


Operator = Annotated[str, Depends(require_scope("operate"))]


def check_time_range(since: datetime | None, until: datetime | None) -> None:
    """422 for a range that ends before it begins (the fields, not the values)."""
    if since is not None and until is not None and until < since:
        raise HTTPException(
            422,
            [{"loc": ["query", "until"], "msg": "until is before since", "type": "time_range"}],
        )
