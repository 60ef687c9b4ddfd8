"""The Streamlit operations console; it talks to the backend's HTTP API only."""
