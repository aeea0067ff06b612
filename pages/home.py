"""Home: what the app is for, where to start, and the runs in progress."""

import streamlit as st

from imbagan import runs
from ui import live

st.title("imbagan ⚖️")
st.markdown(
    "When one class of an image dataset is rare, a classifier learns to ignore it. "
    "imbagan lets you make a benchmark dataset imbalanced on purpose, train a balancing GAN "
    "(BAGAN and its relatives) in the background, watch it draw the rare classes, and judge "
    "whether the generated images help."
)
st.markdown("**Start here**, on the bundled *digits* set (no download, a few minutes on a laptop CPU):")
st.page_link("pages/data.py", label="1. Data: make digits imbalanced (step, IR 10) and look at the counts",
             icon="🗂️")
st.page_link("pages/train.py", label="2. Train: launch bagan and watch one row per class fill in", icon="🏋️")
st.page_link("pages/evaluate.py", label="3. Evaluate: did the generated images help, and for which classes?",
             icon="📊")
st.page_link("pages/taxonomy.py", label="Background: the survey's taxonomy of imbalance and of the methods",
             icon="🧭")

all_runs = runs.list_runs()
active = [r for r in all_runs if r.state in runs.ACTIVE]
st.subheader("Runs in progress" if active else "Recent runs")
shown = active or all_runs[:5]
if shown:
    live.runs_table(shown)
else:
    st.caption("No runs yet.")
