"""The console's access to the backend API: one cached client, errors as readable messages.

Every call names a method of the typed client, e.g. `call(lambda api: api.alarms(status="open"))`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from adapters import api_client
from adapters.api_client import ApiClient
from ui.i18n import t

TIMEOUT_S = 5.0

T = TypeVar("T")


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


def call(request: Callable[[ApiClient], T]) -> T:
    """One request on the console's client; ApiError with a readable message if it fails."""
    try:
        return request(client(api_url(), api_key()))
    except api_client.ApiError as exc:
        raise _readable(exc) from None


def call_or_show_error(request: Callable[[ApiClient], T]) -> T | None:
    """`call`, or show why not on the page and return None: the caller then draws no more."""
    try:
        return call(request)
    except ApiError as exc:
        st.error(str(exc))
        return None
