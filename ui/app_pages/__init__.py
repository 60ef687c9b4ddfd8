"""The console's pages, one file each, run by st.navigation (ui/streamlit_app.py)."""
