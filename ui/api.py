"""The console's access to the backend API: one cached client, errors as readable messages."""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from adapters import api_client
from adapters.api_client import ApiClient
from ui.i18n import t

TIMEOUT_S = 5.0
TEXT_TIMEOUT_S = 60.0  # a CSV export may be large


class ApiError(RuntimeError):
    """Something an operator can read: the backend is unreachable or refused the request."""


def api_url() -> str:
    return os.environ.get("LIJIA_API_URL", "http://127.0.0.1:8000")


def api_key() -> str:
    return os.environ.get("LIJIA_API_KEY", "")


@st.cache_resource
def client(base_url: str, key: str) -> ApiClient:
    """One client per backend and key: a changed LIJIA_API_KEY is not served a stale client."""
    return ApiClient(base_url, key, timeout=TIMEOUT_S)


def _readable(exc: api_client.ApiError) -> ApiError:
    if isinstance(exc, api_client.ApiRefused):
        return ApiError(t("err.refused", status=exc.status, detail=exc.detail))
    if isinstance(exc, api_client.ApiNotJson):
        return ApiError(t("err.not_json", url=api_url()))
    return ApiError(t("err.unreachable", url=api_url()))


def get(path: str, **params: Any) -> Any:
    try:
        return client(api_url(), api_key()).get(path, **params)
    except api_client.ApiError as exc:
        raise _readable(exc) from None


def get_or_show_error(path: str, **params: Any) -> Any | None:
    """GET, or show why not on the page and return None: the caller then draws no more."""
    try:
        return get(path, **params)
    except ApiError as exc:
        st.error(str(exc))
        return None


def get_text(path: str, **params: Any) -> str:
    """A non-JSON resource, e.g. /events.csv."""
    try:
        return client(api_url(), api_key()).get_text(path, timeout=TEXT_TIMEOUT_S, **params)
    except api_client.ApiError as exc:
        raise _readable(exc) from None


def post(path: str, body: dict[str, Any]) -> Any:
    try:
        return client(api_url(), api_key()).post(path, body)
    except api_client.ApiError as exc:
        raise _readable(exc) from None
