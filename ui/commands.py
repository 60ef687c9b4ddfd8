"""A command's progress, polled from GET /commands/{id} until it ends, without a page reload."""

from __future__ import annotations

import streamlit as st

from adapters.api_types import CommandRow
from contracts.vocabulary import FINAL_COMMAND_STATUSES, CommandStatus
from ui.api import call, call_or_show_error
from ui.common import command_status_text
from ui.i18n import t

PROGRESS: dict[str, float] = {
    CommandStatus.PENDING: 0.15,
    CommandStatus.SENT: 0.45,
    CommandStatus.ACCEPTED: 0.75,
}


def _render(command: CommandRow) -> None:
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
    command = call_or_show_error(lambda api: api.command(command_id))
    if command is None:
        return
    _render(command)
    if command["status"] in FINAL_COMMAND_STATUSES:
        st.rerun()  # the whole page: stop polling, refresh the list of recent commands


def command_progress(command_id: str) -> None:
    command = call(lambda api: api.command(command_id))
    if command["status"] in FINAL_COMMAND_STATUSES:
        _render(command)
    else:
        _follow(command_id)
