"""Entry point of the console: `streamlit run ui/streamlit_app.py`."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# Streamlit runs this file as a script; make the repository's packages importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

st.set_page_config(page_title="Lijia Street · 礼嘉街道", page_icon="🏙️", layout="wide")

pages = [
    st.Page("app_pages/street.py", title="Street · 街道", icon="🏙️", default=True),
    st.Page("app_pages/inject.py", title="Inject · 注入事件", icon="💉"),
]
st.navigation(pages).run()
