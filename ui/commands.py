"""A command's progress, polled from GET /commands/{id} until it ends, without a page reload."""

from __future__ import annotations

from typing import Any

import streamlit as st

from contracts.vocabulary import FINAL_COMMAND_STATUSES, CommandStatus
from ui.api import get, get_or_show_error
from ui.common import command_status_text
from ui.i18n import t

PROGRESS = {CommandStatus.PENDING: 0.15, CommandStatus.SENT: 0.45, CommandStatus.ACCEPTED: 0.75}


def _render(command: dict[str, Any]) -> None:
    status = command["status"]
    text = t("cmd.progress", name=command["name"], status=command_status_text(status))
    if status == CommandStatus.SUCCEEDED:
        st.success(text, icon="✅")
    elif status in FINAL_COMMAND_STATUSES:
        reason = f" ({command['reason']})" if command.get("reason") else ""
        st.error(text + reason, icon="⛔")
    else:
        st.progress(PROGRESS.get(status, 0.1), text=f"⏳ {text}")


@st.fragment(run_every=1)
def _follow(command_id: str) -> None:
    command = get_or_show_error(f"/commands/{command_id}")
    if command is None:
        return
    _render(command)
    if command["status"] in FINAL_COMMAND_STATUSES:
        st.rerun()  # the whole page: stop polling, refresh the list of recent commands


def command_progress(command_id: str) -> None:
    command = get(f"/commands/{command_id}")
    if command["status"] in FINAL_COMMAND_STATUSES:
        _render(command)
    else:
        _follow(command_id)
