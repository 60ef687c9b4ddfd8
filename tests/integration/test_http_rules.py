"""HTTP rules of issue 14 against the real backend: reads need a key, query parameters in their
real domain, no duplicate JSON keys, no route shadowing another."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stack.broker import BrokerProcess
from stack.processes import API_KEY, READ_KEY, BackendProcess
from tests.helpers import own_backend

pytestmark = pytest.mark.integration

READ = {"X-API-Key": READ_KEY}


@pytest.fixture
def lone_backend(
    broker: BrokerProcess, creds_dir: Path, tmp_path: Path
) -> Iterator[BackendProcess]:
    yield from own_backend(broker, creds_dir, f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "b", {})


@pytest.fixture
def demo_backend(
    broker: BrokerProcess, creds_dir: Path, tmp_path: Path
) -> Iterator[BackendProcess]:
    env = {"LIJIA_OPEN_READS": "true"}
    yield from own_backend(broker, creds_dir, f"sqlite:///{tmp_path / 'd.db'}", tmp_path / "d", env)


READS = ["/devices", "/events", "/events.csv", "/alarms", "/stats", "/quality", "/dead-letters"]


def test_reads_need_a_key_but_health_and_metrics_do_not(lone_backend: BackendProcess) -> None:
    url = lone_backend.url
    for path in READS:
        assert httpx.get(url + path).status_code == 401, path
        assert httpx.get(url + path, headers={"X-API-Key": "wrong"}).status_code == 401, path
        assert httpx.get(url + path, headers=READ).status_code == 200, path
        assert httpx.get(url + path, headers={"X-API-Key": API_KEY}).status_code == 200, path
    assert httpx.get(url + "/devices/gate-north").status_code == 401
    assert httpx.get(url + "/health").status_code == 200
    assert httpx.get(url + "/metrics").status_code == 200
    assert httpx.get(url + "/openapi.json").status_code == 200


def test_open_reads_setting_opens_reads_only(demo_backend: BackendProcess) -> None:
    assert httpx.get(demo_backend.url + "/devices").status_code == 200
    body = {"device_id": "gate-north", "type": "tailgating", "data": {}}
    assert demo_backend.post("/events/inject", body, key=None).status_code == 401


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/stats", {"day": "0"}),  # read as 1970-01-01 before
        ("/stats", {"day": "1999-12-31"}),
        ("/stats", {"day": "20260101"}),
        ("/events", {"until": "0.5"}),  # seconds since 1970 before
        ("/events", {"since": "1700000000"}),
        ("/events", {"since": "2026-01-01T00:00:00"}),  # no zone: ambiguous
        ("/events.csv", {"until": "0.5"}),
        (
            "/events",
            {"since": "2026-01-02T00:00:00+08:00", "until": "2026-01-01T00:00:00+08:00"},
        ),
        ("/devices/gate-north/telemetry", {"field": "x", "since": "0"}),
        (
            "/devices/gate-north/telemetry",
            {"field": "x", "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        ),
    ],
)
def test_query_parameters_outside_their_domain_are_422(
    lone_backend: BackendProcess, path: str, params: dict[str, str]
) -> None:
    resp = httpx.get(lone_backend.url + path, params=params, headers=READ)
    assert resp.status_code == 422, resp.text
    # The fields are named, the values are not echoed.
    assert all(v not in resp.text for v in params.values() if len(v) > 4), resp.text


def test_query_parameters_inside_their_domain_are_answered(lone_backend: BackendProcess) -> None:
    url = lone_backend.url
    assert httpx.get(url + "/stats", params={"day": "2026-01-01"}, headers=READ).json()["day"] == (
        "2026-01-01"
    )
    same = {"since": "2026-01-01T00:00:00+08:00", "until": "2026-01-01T00:00:00.5+08:00"}
    assert httpx.get(url + "/events", params=same, headers=READ).status_code == 200


def test_a_repeated_single_valued_parameter_is_422(lone_backend: BackendProcess) -> None:
    url = lone_backend.url
    resp = httpx.get(url + "/events?limit=1&limit=2", headers=READ)
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["query", "limit"]
    assert httpx.get(url + "/stats?day=2026-01-01&day=2026-01-02", headers=READ).status_code == 422


def test_duplicate_keys_in_a_json_body_are_refused(lone_backend: BackendProcess) -> None:
    raw = (
        b'{"device_id": "gate-north", "type": "tailgating", "data": '
        b'{"extra_people": 1, "extra_people": 7}}'
    )
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    resp = httpx.post(lone_backend.url + "/events/inject", content=raw, headers=headers)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"] == [
        {"loc": ["body"], "msg": "a JSON object names the same key twice", "type": "duplicate_key"}
    ]
    top = b'{"device_id": "gate-north", "device_id": "gate-south", "type": "tailgating"}'
    resp = httpx.post(lone_backend.url + "/events/inject", content=top, headers=headers)
    assert resp.status_code == 422 and "gate-" not in resp.text
    # The same body without the duplicate is taken.
    ok = b'{"device_id": "gate-north", "type": "tailgating", "data": {"extra_people": 1}}'
    resp = httpx.post(lone_backend.url + "/events/inject", content=ok, headers=headers)
    assert resp.status_code == 202, resp.text


def test_options_on_inject_is_not_the_event_lookup(lone_backend: BackendProcess) -> None:
    """`/events/{event_id}` matched "inject": OPTIONS answered 405 with `Allow: GET`."""
    resp = httpx.options(lone_backend.url + "/events/inject", headers=READ)
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST"
    # A path with two routes names both methods.
    resp = httpx.request("PUT", lone_backend.url + "/clock", headers=READ)
    assert resp.status_code == 405 and resp.headers["allow"] == "GET, POST"
    # GET on the injection path is no event lookup either.
    resp = httpx.get(lone_backend.url + "/events/inject", headers=READ)
    assert resp.status_code == 405 and resp.headers["allow"] == "POST"
