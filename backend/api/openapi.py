"""The OpenAPI document: FastAPI's, plus every status each route can answer with and the body it
really sends, derived in one place from the route's dependencies (backend/api/gate.py):

- a key is needed (every path but the open ones) → 401; a scope above `read` → 403, and 429
  (writes are rate-limited per key);
- any request may carry a body → 413, or 408 when it is not all there in time
  (backend/api/body_limit.py); a body that is not text → 400
  (FastAPI's own answer);
- path parameters → 404; parameters or a body → 422 in the validation handler's shape (no input);
- what a route raises itself (404, 409, 503, 504) is declared on the route, and gets the error
  body here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from backend.api.deps import SCOPE_RANK
from backend.api.gate import needs_read_key, route_facts
from backend.config import Settings

PROBLEM = {"$ref": "#/components/schemas/Problem"}
VALIDATION = {"$ref": "#/components/schemas/HTTPValidationError"}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "title": "Problem",
        "type": "object",
        "properties": {"detail": {"title": "Detail", "type": "string"}},
        "required": ["detail"],
    },
    # backend/api/app.py's validation handler and backend/api/gate.py: the field and the reason,
    # never the submitted value.
    "ValidationError": {
        "title": "ValidationError",
        "type": "object",
        "properties": {
            "loc": {
                "title": "Location",
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            },
            "msg": {"title": "Message", "type": "string"},
            "type": {"title": "Error Type", "type": "string"},
        },
        "required": ["loc", "msg", "type"],
        "additionalProperties": False,
    },
    # A list of field errors, or one reason (a payload the contract refuses).
    "HTTPValidationError": {
        "title": "HTTPValidationError",
        "type": "object",
        "properties": {
            "detail": {
                "title": "Detail",
                "anyOf": [
                    {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
                    {"type": "string"},
                ],
            }
        },
        "required": ["detail"],
    },
}

DESCRIPTIONS = {
    "400": "the body cannot be read as JSON text (e.g. not UTF-8)",
    "401": "no X-API-Key header, or an unknown key",
    "403": "the key's scope is not enough",
    "404": "no such resource",
    "408": "the request body did not arrive in time (LIJIA_BODY_TIMEOUT_S)",
    "413": "the request body is over the limit (LIJIA_MAX_BODY_BYTES)",
    "422": "invalid parameters or body: the fields and why, never the values sent",
    "429": "too many writes with this key (LIJIA_WRITE_RATE_LIMIT)",
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _add(responses: dict[str, Any], status: str, schema: dict[str, Any]) -> None:
    entry = responses.setdefault(status, {"description": DESCRIPTIONS.get(status, "refused")})
    entry["content"] = _json(schema)
    if status == "429":
        entry["headers"] = {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        }


def document(schema: dict[str, Any], app: FastAPI, settings: Settings) -> dict[str, Any]:
    """Complete FastAPI's document in place (and return it)."""
    schema.setdefault("components", {}).setdefault("schemas", {}).update(SCHEMAS)
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not context.include_in_schema:
            continue
        facts = route_facts(route)
        path = context.path_format or route.path_format
        for method in context.methods or ():
            operation = schema["paths"].get(path, {}).get(method.lower())
            if operation is None:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            keyed = needs_read_key(path, method, open_reads=settings.open_reads)
            if keyed or facts.scope:
                _add(responses, "401", PROBLEM)
                operation["security"] = [{"ApiKey": []}]
            else:
                operation.pop("security", None)
            if facts.scope and SCOPE_RANK[facts.scope] > SCOPE_RANK["read"]:
                _add(responses, "403", PROBLEM)
                _add(responses, "429", PROBLEM)
            _add(responses, "408", PROBLEM)
            _add(responses, "413", PROBLEM)
            if facts.has_body:
                _add(responses, "400", PROBLEM)
            if facts.has_path_params:
                _add(responses, "404", PROBLEM)
            if facts.has_body or facts.single_query or facts.has_path_params or "422" in responses:
                _add(responses, "422", VALIDATION)
            for status, entry in responses.items():
                if status[0] in "45" and "content" not in entry:
                    entry["content"] = _json(PROBLEM)
    return schema


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the completed document at /openapi.json (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            base = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = document(base, app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
