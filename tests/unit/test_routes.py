"""The API's routes as data: no path shadows another, and the OpenAPI document lists every status
each route can answer with, with the body it really sends (issue 14)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from backend.api.app import create_app
from backend.config import get_settings


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(get_settings(api_keys={}))


def _routes(app: FastAPI) -> list[Any]:
    return [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]


def test_no_static_path_is_matched_by_a_parametrised_route(app: FastAPI) -> None:
    """`/events/{event_id}` matched "/events/inject", so OPTIONS on it answered 405 `Allow: GET`."""
    routes = _routes(app)
    static = {r.path_format for r in routes if "{" not in r.path_format}
    for route in routes:
        if "{" not in route.path_format:
            continue
        shadowed = sorted(path for path in static if route.path_regex.match(path))
        assert not shadowed, f"{route.path_format} matches {shadowed}"
    assert "/events/inject" in static


def _operations(app: FastAPI) -> dict[tuple[str, str], dict[str, Any]]:
    schema = app.openapi()
    return {
        (method.upper(), path): op
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
    }


def test_every_operation_documents_the_statuses_its_dependencies_can_answer(app: FastAPI) -> None:
    ops = _operations(app)
    for (method, path), op in ops.items():
        statuses = set(op["responses"])
        assert "413" in statuses, (method, path)  # the body limit holds for every route
        if path != "/health":
            assert {"401"} <= statuses and op["security"] == [{"ApiKey": []}], (method, path)
        if method == "POST":
            assert {"403", "429"} <= statuses, (method, path)
        if "requestBody" in op:
            assert {"400", "422"} <= statuses, (method, path)
        if "{" in path:
            assert {"404", "422"} <= statuses, (method, path)
        for status, entry in op["responses"].items():
            if status[0] in "45":
                assert entry["content"]["application/json"]["schema"]["$ref"], (method, path)
    assert (
        "security" not in ops[("GET", "/health")]
        and "401" not in ops[("GET", "/health")]["responses"]
    )
    assert "409" in ops[("POST", "/alarms/{alarm_id}/acknowledge")]["responses"]
    assert "409" in ops[("POST", "/devices/{device_id}/commands")]["responses"]
    assert "404" in ops[("POST", "/events/inject")]["responses"]


def test_the_422_schema_is_the_validation_handlers_body(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    error = schemas["ValidationError"]
    assert set(error["properties"]) == {"loc", "msg", "type"}  # no `input`: values never echo
    assert error["additionalProperties"] is False
    assert app.openapi()["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"


def test_query_domains_are_in_the_document(app: FastAPI) -> None:
    ops = _operations(app)
    day = next(p for p in ops[("GET", "/stats")]["parameters"] if p["name"] == "day")
    assert "pattern" in str(day["schema"])
    since = next(p for p in ops[("GET", "/events")]["parameters"] if p["name"] == "since")
    assert "date-time" in str(since["schema"]) and "pattern" in str(since["schema"])


def test_open_reads_drop_the_key_from_reads_only() -> None:
    ops = _operations(create_app(get_settings(api_keys={}, open_reads=True)))
    assert "security" not in ops[("GET", "/devices")]
    assert ops[("POST", "/events/inject")]["security"] == [{"ApiKey": []}]
