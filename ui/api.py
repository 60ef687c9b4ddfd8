"""The console's HTTP client for the backend API: one cached client, errors as messages."""

from __future__ import annotations

import os
from typing import Any

import httpx
import streamlit as st

from ui.i18n import t


class ApiError(RuntimeError):
    """Something an operator can read: the backend is unreachable or refused the request."""


def api_url() -> str:
    return os.environ.get("LIJIA_API_URL", "http://127.0.0.1:8000")


def api_key() -> str:
    return os.environ.get("LIJIA_API_KEY", "")


@st.cache_resource
def client(base_url: str, key: str) -> httpx.Client:
    """One client per backend and key: a changed LIJIA_API_KEY is not served a stale client."""
    return httpx.Client(base_url=base_url, timeout=5.0, headers={"X-API-Key": key})


def _detail(resp: httpx.Response) -> str:
    """The backend's reason in a line: FastAPI's `detail` is a string or a list of field errors."""
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        return resp.text[:200]
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg', '')}"
            if isinstance(e, dict)
            else str(e)
            for e in detail
        )
    return str(detail)


def _request(method: str, path: str, **kw: Any) -> httpx.Response:
    url = api_url()
    try:
        resp = client(url, api_key()).request(method, path, **kw)
    except httpx.HTTPError:
        raise ApiError(t("err.unreachable", url=url)) from None
    if resp.status_code >= 400:
        raise ApiError(t("err.refused", status=resp.status_code, detail=_detail(resp)))
    return resp


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise ApiError(t("err.not_json", url=api_url())) from None


def _params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def get(path: str, **params: Any) -> Any:
    return _json(_request("GET", path, params=_params(params)))


def get_text(path: str, **params: Any) -> str:
    """A non-JSON resource, e.g. /events.csv."""
    return _request("GET", path, params=_params(params), timeout=60.0).text


def post(path: str, body: dict[str, Any]) -> Any:
    return _json(_request("POST", path, json=body))
