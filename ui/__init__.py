"""Streamlit-side helpers shared by the pages: widgets in, pictures out (no torch, no training)."""
