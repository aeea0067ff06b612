"""Compare: several runs (methods, datasets, imbalance ratios) in one table, and their curves overlaid."""

from __future__ import annotations

import streamlit as st

from imbagan import preview as pv
from imbagan import runs
from ui import charts, live

st.title("Compare runs")

all_runs = runs.list_runs()
if not all_runs:
    st.info("No runs yet: train one or two first, then compare them here.")
    st.page_link("pages/train.py", label="Train a balancing GAN", icon="🏋️")
    st.stop()

table = pv.compare_table(all_runs)
evaluated = table["condition"].notna()

st.markdown("One row per run and evaluated condition: the classifier trained on the imbalanced set, on the "
            "classic fixes (oversampling, mirroring, SMOTE, class weights), on the set topped up by the run's "
            "GAN, and on the full balanced set. A run not yet evaluated shows its training columns only.")
f1, f2, f3, f4 = st.columns(4)
methods = f1.multiselect("Method", sorted(table["method"].dropna().unique()), key="cmp.methods",
                         placeholder="all methods")
sets = f2.multiselect("Dataset", sorted(table["dataset"].dropna().unique()), key="cmp.datasets",
                      placeholder="all datasets")
conds = f3.multiselect("Condition", sorted(table.loc[evaluated, "condition"].unique()), key="cmp.conditions",
                       placeholder="all conditions")
only_eval = f4.toggle("Evaluated runs only", value=False, key="cmp.only_eval")
shown = table
if methods:
    shown = shown[shown["method"].isin(methods)]
if sets:
    shown = shown[shown["dataset"].isin(sets)]
if conds:
    shown = shown[shown["condition"].isin(conds)]
if only_eval:
    shown = shown[shown["condition"].notna()]

# Scores first, the long run id last, so the numbers that matter fit without scrolling sideways.
order = ["method", "dataset", "imbalance", "ir", "condition", "acsa", "gmean", "macro_f1", "minority_recall",
         "accuracy", "steps", "state", "run"]
NAMES = {"ir": "IR", "acsa": "ACSA", "gmean": "G-mean", "macro_f1": "macro F1", "minority_recall": "minority recall"}
s1, s2 = st.columns([3, 1], vertical_alignment="bottom")
default_sort = "acsa" if evaluated.any() else "run"
sort_by = s1.selectbox("Sort by", order, index=order.index(default_sort), key="cmp.sort",
                       format_func=lambda c: NAMES.get(c, c), help="Or click a column header in the table.")
descending = s2.toggle("Largest first", value=True, key="cmp.desc")
shown = shown.sort_values(sort_by, ascending=not descending, na_position="last", kind="stable")

HELP = {"ir": "Largest / smallest class of the trained set.", "acsa": "Average class-specific accuracy.",
        "gmean": "Geometric mean of the per-class recalls.", "minority_recall": "Recall of the smallest class."}
columns = {k: st.column_config.NumberColumn(NAMES.get(k, k), format="%.3f", help=HELP.get(k)) for k in pv.EVAL_METRICS}
columns["ir"] = st.column_config.NumberColumn("IR", format="%.1f", help=HELP["ir"])
columns["condition"] = st.column_config.TextColumn(
    "condition", help="What the classifier was trained on; empty: the run has not been evaluated yet.")
st.dataframe(shown, hide_index=True, width="stretch", key="cmp.table", column_order=order, column_config=columns)
st.caption(f"{len(shown)} of {len(table)} rows; {table['run'].nunique()} runs, "
           f"{table.loc[evaluated, 'run'].nunique()} evaluated.")

st.subheader("Training curves, overlaid")
labels = {r.id: live.run_label(r) for r in all_runs}
ids = st.multiselect("Runs", list(labels), default=list(labels)[:3], format_func=labels.get, key="cmp.runs")
if not ids:
    st.info("Choose one or more runs to overlay their curves.")
    st.stop()
long = pv.metrics_long([r for r in all_runs if r.id in ids])
losses, other = charts.curve_keys(long)
keys = losses + other
if not keys:
    st.info("These runs have not logged anything yet.")
    st.stop()
key = st.selectbox("Logged value", keys, index=keys.index("g_loss") if "g_loss" in keys else 0, key="cmp.key")
st.plotly_chart(charts.curves_figure(long, [key], f"{key} against the step", runs_col="run"), key="cmp.curves")
