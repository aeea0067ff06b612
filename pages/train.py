"""Train: pick data, imbalance and method; launch a background run; watch it live."""

from __future__ import annotations

import dataclasses

import streamlit as st

from imbagan import preview as pv
from imbagan import runs
from imbagan.imbalance import imbalance_ratio
from ui import charts, live, widgets

st.title("Train a balancing GAN")

# Settings carried from the Data page ("data_choice", or its last choice when Train is opened from the
# sidebar) or a Taxonomy preset ("train_preset") become the form's defaults; the form's own widget
# state is cleared so they show.
last_data = st.session_state.get("data_page.last")
carried = {**st.session_state.pop("data_choice", {}), **st.session_state.pop("train_preset", {})}
if last_data and last_data != st.session_state.get("data_page.seen_by_train"):
    # A choice made on Data since this page last looked: bring its data fields over, keep the method.
    carried = {**st.session_state.get("train_defaults", {}), **last_data, **carried}
st.session_state["data_page.seen_by_train"] = last_data
if carried:
    for k in [k for k in st.session_state if str(k).startswith("train.") and k != "train.run"]:
        del st.session_state[k]
    st.session_state["train_defaults"] = carried
defaults = st.session_state.get("train_defaults", {})

all_runs = runs.list_runs()
ids = [r.id for r in all_runs]
current = live.selected_run(ids)

# The New run form keeps its own open/closed state (a keyed expander): open on a visit with no run in
# the URL or with settings carried over, then as the user leaves it. It must not follow the URL (the
# first widget change writes ?run=, which folded the form away under the user), and it folds after
# Launch even when the user had opened it by hand, so the new run's live panel comes up in view.
# (The default is part of the expander's identity, so it is fixed for the visit: the state is gone on
# a fresh visit, or was just cleared with the carried settings.)
if "train.form" not in st.session_state or carried:
    st.session_state["train_form_default"] = current is None or bool(carried)
if st.session_state.pop("train_fold_form", False):
    st.session_state["train.form"] = False
with st.expander("New run", expanded=st.session_state["train_form_default"], key="train.form", on_change="rerun"):
    c_data, c_method = st.columns([1, 1])
    with c_data:
        st.markdown("**Data and imbalance**")
        fields = widgets.data_widgets("train", defaults)
    with c_method:
        st.markdown("**Method**")
        fields.update(widgets.method_widgets("train", defaults, data=fields))
    cfg, error = widgets.build_config(fields)
    error = error or pv.data_root_error(cfg)  # the app reads only its allowed data folders
    if error:
        cfg = None
        st.error(error)
    else:
        try:
            names, before, after = widgets.preview(cfg)
        except (ValueError, FileNotFoundError) as e:
            st.error(widgets.page_error(e))
            cfg = None
        else:
            ir = imbalance_ratio(after)
            st.plotly_chart(charts.counts_figure(names, before, after, log_y=ir > 20), key="train.counts")
            st.caption(f"{sum(after):,} training images kept of {sum(before):,}; imbalance ratio {ir:.1f}. "
                       "The test split stays balanced and untouched.")
    then_evaluate = st.checkbox(
        "Evaluate it too", value=True, key="train.evaluate",
        help="Launch the evaluation with the Evaluate page's default settings now: the classifiers that need no "
             "generated images (the untreated one, the cheap fixes, the full set) train while the GAN does, and "
             "the GAN-balanced ones as soon as it has finished, so the verdict comes shortly after the last step.")
    if st.button("Launch training", type="primary", disabled=cfg is None, key="train.launch"):
        run_id = runs.start(dataclasses.replace(cfg, evaluate_after=then_evaluate))
        st.query_params["run"] = run_id
        st.session_state["train.run"] = run_id
        st.session_state["train_fold_form"] = True
        st.rerun()

if not all_runs:
    st.info("No runs yet: set up one above and launch it.")
    st.stop()

labels = live.run_labels(all_runs, state=True)
chosen = st.selectbox("Run", ids, index=ids.index(current) if current else 0, format_func=labels.get,
                      key="train.run")
if chosen != st.query_params.get("run"):
    st.query_params["run"] = chosen
live.run_panel(chosen)

with st.expander(f"All runs ({len(all_runs)})"):
    live.runs_table(all_runs)
