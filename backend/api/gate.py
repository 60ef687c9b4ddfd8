"""What every request passes before its route runs (an app-wide dependency, so a new route gets
it without asking): a key of scope `read` unless the path is open, one value for each query
parameter that takes one, and JSON bodies without a duplicate key.

Also the route facts that the OpenAPI document (backend/api/openapi.py) derives statuses from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from fastapi import HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from backend.api.deps import CtxDep, KeyDep, authorize

# Open to anyone: liveness and scraping (the OpenAPI document and its pages are not routes of
# ours, so no dependency runs for them).
OPEN_PATHS = frozenset({"/health", "/metrics"})
READ_METHODS = frozenset({"GET", "HEAD"})


def needs_read_key(path: str, method: str, *, open_reads: bool) -> bool:
    if path in OPEN_PATHS:
        return False
    return not (open_reads and method in READ_METHODS)


def dependants(dependant: Dependant) -> Iterator[Dependant]:
    """The dependant and every sub-dependency, depth first."""
    yield dependant
    for sub in dependant.dependencies:
        yield from dependants(sub)


def _is_many(annotation: Any) -> bool:
    """A list-like parameter (`?x=1&x=2` is meant), through Optional and Annotated."""
    origin = get_origin(annotation)
    if origin in (list, set, tuple, frozenset):
        return True
    return any(_is_many(arg) for arg in get_args(annotation) if arg is not type(None))


@dataclass(frozen=True)
class RouteFacts:
    """What a route's dependencies say about the statuses it can answer with."""

    scope: str | None  # the scope a key needs beyond the app-wide read check (None: none)
    single_query: frozenset[str]  # query parameters that take one value
    has_body: bool
    has_path_params: bool


def route_facts(route: APIRoute) -> RouteFacts:
    scope = None
    single: set[str] = set()
    body = path = False
    for dep in dependants(route.dependant):
        needed = getattr(dep.call, "needed_scope", None)
        if needed is not None:
            scope = needed
        for field in dep.query_params:
            if not _is_many(field.field_info.annotation):
                single.add(field.alias)
        body = body or bool(dep.body_params)
        path = path or bool(dep.path_params)
    return RouteFacts(scope, frozenset(single), body, path)


_FACTS: dict[int, RouteFacts] = {}


def _facts_of(route: APIRoute) -> RouteFacts:
    facts = _FACTS.get(id(route))
    if facts is None:
        facts = _FACTS[id(route)] = route_facts(route)
    return facts


def _refuse(field: tuple[str, ...], msg: str, kind: str) -> HTTPException:
    # The shape of the validation handler's 422 (backend/api/app.py), naming no value.
    return HTTPException(422, [{"loc": list(field), "msg": msg, "type": kind}])


class DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey
        out[key] = value
    return out


def _is_json(content_type: str | None) -> bool:
    # As FastAPI decides whether to parse a body as JSON (application/json or */*+json).
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


async def gate(request: Request, ctx: CtxDep, x_api_key: KeyDep = None) -> None:
    if needs_read_key(request.url.path, request.method, open_reads=ctx.settings.open_reads):
        authorize(ctx, x_api_key, "read")
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    facts = _facts_of(route)
    names = [name for name, _ in request.query_params.multi_items()]
    for name in sorted(facts.single_query):
        if names.count(name) > 1:
            raise _refuse(("query", name), "give this parameter once", "repeated_parameter")
    if facts.has_body and _is_json(request.headers.get("content-type")):
        try:
            json.loads(await request.body(), object_pairs_hook=_no_duplicates)
        except DuplicateKey:
            raise _refuse(
                ("body",), "a JSON object names the same key twice", "duplicate_key"
            ) from None
        except ValueError:
            return  # not JSON: FastAPI has already said so, or the body is not JSON's to judge
