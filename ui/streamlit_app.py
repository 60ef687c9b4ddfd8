"""Entry point of the console: `streamlit run ui/streamlit_app.py`."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# Streamlit runs this file as a script; make the repository's packages importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ui.clock import clock_controls, clock_header
from ui.i18n import DEFAULT, LANGUAGES, STRINGS, t

st.set_page_config(page_title=STRINGS["app.title"].joined(), page_icon="🏙️", layout="wide")

with st.sidebar:
    st.segmented_control(
        t("app.language"),
        list(LANGUAGES),
        format_func=LANGUAGES.__getitem__,
        default=DEFAULT,
        required=True,
        key="lang",
    )
    st.text_input(
        t("app.operator"),
        value="operator",
        max_chars=64,
        key="operator",
        help=t("app.operator_help"),
    )

# Every page's header: the street's date, time and speed (read before the controls use it).
clock_header()
with st.sidebar:
    clock_controls()

pages = [
    st.Page("app_pages/overview.py", title=t("nav.overview"), icon="🗺️", default=True),
    st.Page("app_pages/devices.py", title=t("nav.devices"), icon="📟"),
    st.Page("app_pages/events.py", title=t("nav.events"), icon="📜"),
    st.Page("app_pages/alarms.py", title=t("nav.alarms"), icon="🚨"),
    st.Page("app_pages/inject.py", title=t("nav.inject"), icon="💉"),
    st.Page("app_pages/quality.py", title=t("nav.quality"), icon="🩺"),
]
st.navigation(pages).run()
