"""Compare: several runs (methods, datasets, imbalance ratios) in one table, and their curves overlaid."""

from __future__ import annotations

import streamlit as st

from imbagan import comparison
from imbagan import runs
from ui import charts, live
from ui import compare as cmp
from ui.labels import label, number_format, tooltip

st.title("Compare runs")

all_runs = runs.list_runs()
if not all_runs:
    st.info("No runs yet: train one or two first, then compare them here.")
    st.page_link("pages/train.py", label="Train a balancing GAN", icon="🏋️")
    st.stop()

names = live.run_labels(all_runs)
table = cmp.table(comparison.compare_table(all_runs), all_runs, names)
evaluated = table["condition"].notna()

st.markdown("One row per run and GAN condition (the classifier trained on the set topped up by that run's GAN), "
            "and each baseline once per data setting: the imbalanced set, the classic fixes (oversampling, "
            "mirroring, SMOTE, class weights) and the full balanced set do not depend on the GAN. A run not yet "
            "evaluated shows its training columns only. Each GAN row carries its verdict: how far it lands from "
            "the untreated classifier and from the **best cheap fix** of its evaluation, with the spread over "
            "classifier seeds (the rule is under the table).")
f1, f2, f3, f4 = st.columns(4)
methods = f1.multiselect("Method", sorted(table["method"].dropna().unique()), key="cmp.methods",
                         placeholder="all methods", help="Baseline rows stay: they are what a method is judged against.")
# ACSA on digits and on MNIST are not one ranking: with several datasets, start from the newest run's.
all_sets = sorted(table["dataset"].dropna().unique())
newest = all_runs[0].config.get("dataset") if all_runs else None
sets = f2.multiselect("Dataset", all_sets, default=[newest] if len(all_sets) > 1 and newest in all_sets else [],
                      key="cmp.datasets", placeholder="all datasets",
                      help="Scores compare only within one dataset; the newest run's is chosen first.")
conds = f3.multiselect("Condition", sorted(table.loc[evaluated, "condition"].unique()), key="cmp.conditions",
                       placeholder="all conditions")
only_eval = f4.toggle("Evaluated runs only", value=False, key="cmp.only_eval")
shown = table
if methods:
    shown = shown[shown["method"].isin(methods) | shown["kind"].eq("baseline")]
if sets:
    shown = shown[shown["dataset"].isin(sets)]
if conds:
    shown = shown[shown["condition"].isin(conds)]
if only_eval:
    shown = shown[shown["condition"].notna()]

# Scores first, the run's name after the data, so the numbers that matter fit without scrolling sideways.
# The verdict's columns right after the scores: did the GAN beat the cheapest fix, and by how much?
order = ["run", "method", "dataset", "imbalance", "ir", "condition", "acsa", "gmean", "macro_f1", "minority_recall",
         *cmp.VERDICT_COLUMNS, "accuracy", "steps", "state"]
s1, s2, s3 = st.columns([3, 1, 1], vertical_alignment="bottom")
sortable = [c for c in order if c != "run" and c not in cmp.VERDICT_COLUMNS[1:]]
default_sort = "acsa" if evaluated.any() else "steps"
sort_by = s1.selectbox("Sort by", sortable, index=sortable.index(default_sort), key="cmp.sort",
                       format_func=label, help="Or click a column header in the table.")
descending = s2.toggle("Largest first", value=True, key="cmp.desc")
gan_first = s3.toggle("GAN rows first", value=True, key="cmp.gan_first",
                      help="The runs' own rows above the baselines, each group sorted; off: one ranking.")
shown = cmp.sort(shown, sort_by, descending, gan_first)
# An empty cell is a dash, never the word "None" (issue 23, 9).
text_cols = [c for c in ("condition", *cmp.VERDICT_COLUMNS, "state") if c in shown.columns]
shown = shown.astype({c: object for c in text_cols})
shown[text_cols] = shown[text_cols].where(shown[text_cols].notna(), "—")
if not sets and len(all_sets) > 1:
    st.caption(f"Rows from {len(all_sets)} datasets: scores compare only within one; choose one above.")

columns = {k: st.column_config.NumberColumn(label(k), format=number_format(k), help=tooltip(k))
           for k in [*comparison.EVAL_METRICS, "ir"]}
columns["steps"] = st.column_config.NumberColumn("steps", format="%d")
columns["run"] = st.column_config.TextColumn("run", help="method · dataset · imbalance · start time; "
                                             "'baseline': a classic fix, the same for every run on that data.")
columns["condition"] = st.column_config.TextColumn(
    "condition", help="What the classifier was trained on; empty: the run has not been evaluated yet.")
for k in cmp.VERDICT_COLUMNS:
    columns[k] = st.column_config.TextColumn(cmp.VERDICT_LABELS[k], help=cmp.VERDICT_HELP[k])
st.dataframe(shown, hide_index=True, width="stretch", key="cmp.table", column_order=order, column_config=columns)
n_runs = table["id"].dropna().nunique()
st.caption(f"{len(shown)} of {len(table)} rows; {n_runs} runs, {table.loc[evaluated, 'id'].dropna().nunique()} "
           f"evaluated; {int(table['kind'].eq('baseline').sum())} baseline rows.")
st.caption(cmp.RULE_NOTE)

st.subheader("Training curves, overlaid")
ids = st.multiselect("Runs", list(names), default=list(names)[:3], format_func=names.get, key="cmp.runs")
if not ids:
    st.info("Choose one or more runs to overlay their curves.")
    st.stop()
chosen = [r for r in all_runs if r.id in ids]
long = comparison.metrics_long(chosen)
losses, other = charts.curve_keys(long)
keys = losses + other
if not keys:
    st.info("These runs have not logged anything yet.")
    st.stop()
c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
key = c1.selectbox("Logged value", keys, index=keys.index("g_loss") if "g_loss" in keys else 0, key="cmp.key",
                   format_func=label, help=tooltip(keys[0]))
normalise = c2.toggle("Scale each curve to its peak", value=False, key="cmp.norm",
                      help="Divide each curve by its largest absolute value, to compare shapes across loss scales.")
# Losses of different methods live on different scales (BCE, least squares, Wasserstein): one chart per
# method, so a method's curves are never read against another's axis.
by_method: dict[str, list[str]] = {}
for r in chosen:
    by_method.setdefault(str(r.config.get("method")), []).append(r.id)
drawn = [m for m, rids in by_method.items() if key in long[long["run"].isin(rids)].dropna(axis=1, how="all")]
if not drawn:
    st.info(f"None of these runs logged {label(key)}.")
cols = st.columns(min(2, max(1, len(drawn))))
for i, m in enumerate(drawn):
    part = long[long["run"].isin(by_method[m])]
    cols[i % len(cols)].plotly_chart(
        charts.curves_figure(part, [key], f"{label(key)}: {m}", runs_col="run", run_names=names, normalise=normalise),
        key=f"cmp.curves.{m}")
if len(by_method) > len(drawn):
    st.caption("Not logged by " + ", ".join(m for m in by_method if m not in drawn) + ".")
