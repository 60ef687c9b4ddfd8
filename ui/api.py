"""The console's HTTP client for the backend API: one cached client, errors as messages."""

from __future__ import annotations

import os
from typing import Any

import httpx
import streamlit as st


class ApiError(RuntimeError):
    """Something an operator can read: the backend is unreachable or refused the request."""


def api_url() -> str:
    return os.environ.get("LIJIA_API_URL", "http://127.0.0.1:8000")


@st.cache_resource
def client(base_url: str) -> httpx.Client:
    headers = {"X-API-Key": os.environ.get("LIJIA_API_KEY", "")}
    return httpx.Client(base_url=base_url, timeout=5.0, headers=headers)


def _call(method: str, path: str, **kw: Any) -> Any:
    try:
        resp = client(api_url()).request(method, path, **kw)
    except httpx.HTTPError:
        raise ApiError(f"The backend at {api_url()} cannot be reached.") from None
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("detail")
        except ValueError:
            detail = resp.text[:200]
        raise ApiError(f"The backend refused the request ({resp.status_code}): {detail}")
    return resp.json()


def get(path: str, **params: Any) -> Any:
    return _call("GET", path, params={k: v for k, v in params.items() if v is not None})


def post(path: str, body: dict[str, Any]) -> Any:
    return _call("POST", path, json=body)
