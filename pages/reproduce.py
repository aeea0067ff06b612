"""Reproduce: pick a paper's table, launch it in the background, watch it fill cell by cell."""

from __future__ import annotations


import pandas as pd
import streamlit as st

from imbagan import budgets, runs
from imbagan.reproduce import SPECS, store, table
from imbagan.reproduce.cli import driver_state, launch_background
from imbagan.reproduce.cli import stop as stop_driver
from imbagan.reproduce.spec import BUDGETS, PROTOCOL_TITLES, PROTOCOLS
from ui import live
from ui.reproduce import plan, table_figure

LONG_S = 300  # a launch expected to train longer than this asks for a confirmation first

st.title("Reproduce a paper's table")
st.markdown("Every cell of a published table, measured twice: under the **paper's protocol** (for AGGAN: the "
            "discriminator's class head, best over checkpoints *on the test set*, so **test-selected, as "
            "published**) and under an **honest protocol** (an independent classifier, a fixed budget declared "
            "in advance, the untouched test split). Each GAN is a normal run: Train, Evaluate and Compare show it.")

name = st.selectbox("Table", [k for k, sp in SPECS.items() if sp.listed], format_func=lambda k: f"{k}: {SPECS[k].title}",
                    key="rep.spec")
spec = SPECS[name]
st.caption(f"{spec.paper}. {spec.where}. Protocols: "
           + "; ".join(f"{PROTOCOL_TITLES[p]} ({PROTOCOLS[p]})" for p in spec.protocols))

c1, c2, c3, c4 = st.columns(4)
budget = c1.radio("Budget", BUDGETS, horizontal=True, key="rep.budget",
                  help="quick: minutes on a CPU; paper: the paper's own training length (a GPU)")
c1.caption(spec.budgets[budget].note)
datasets = sorted({s.dataset for s in spec.settings})
chosen_ds = c2.multiselect("Datasets", datasets, default=datasets[:1], key=f"rep.datasets.{name}")
ds_settings = [s.key for s in spec.settings if s.dataset in chosen_ds]
chosen_settings = c2.multiselect("Settings", ds_settings, default=ds_settings[:1],
                                 key=f"rep.settings.{name}.{'-'.join(chosen_ds)}")
rows = [r.key for r in spec.rows]
chosen_rows = c3.multiselect("Rows", rows, default=rows, key=f"rep.rows.{name}",
                             format_func=lambda k: spec.row(k).label)
repeats = c4.number_input("Repeats", 1, 20, 1 if budget == "quick" else spec.repeats, key="rep.repeats",
                          help=f"the paper: {spec.repeats}")
jobs = c4.number_input("Jobs at once", 1, 16, 1, key="rep.jobs", help="background processes on this machine")
ray = c4.text_input("Ray address", "", key="rep.ray", placeholder="empty: this machine",
                    help="'auto' for a running Ray cluster, host:port, or 'local'")

work = plan(spec, budget, chosen_settings, chosen_rows, int(repeats))
long_run = work["seconds"] is None or work["seconds"] > LONG_S
if work["seconds"] is None:
    when = (f"no measured pace for {', '.join(work['unknown'])} at this budget, so no estimate: it may take "
            "hours on a CPU")
else:
    when = f"about {budgets.minutes(work['seconds'])} of GAN training at the measured pace, plus the classifiers"
st.markdown(f"**{work['jobs']} jobs** ({work['gan_jobs']} GAN trainings); {when}.")
confirmed = not long_run or st.checkbox("I understand this runs for a long time", key="rep.confirm")

folder = store.default_folder(name, budget)
running, _ = driver_state(folder)
b1, b2 = st.columns([1, 4])
if b1.button("Launch", type="primary", disabled=running or not chosen_settings or not chosen_rows or not confirmed,
             key="rep.launch"):
    launch_background(folder, name, budget, repeats=repeats, jobs=jobs, settings=chosen_settings, rows=chosen_rows,
                      ray=ray.strip() or None)
    st.rerun()
if running and b1.button("Stop", key="rep.stop"):
    stop_driver(folder)
    st.rerun()
b2.caption(f"Folder: `{folder}`; re-launching skips finished cells and continues the others.")


def _cell(rec) -> str:
    return table.cell_text(rec)


def verdict_panel() -> None:
    """Under the honest table: each GAN row against CN and the best cheap fix of its setting."""
    vdf = table.verdicts(folder)
    if vdf.empty:
        return
    st.markdown("**Verdict: did the GAN beat the cheapest fix?** A GAN earns its place when it beats the best "
                "cheap fix, not just the untreated classifier (CN).")
    st.dataframe(table.verdict_display(vdf), hide_index=True, width="stretch", key="rep.verdict")
    st.caption(table.VERDICT_NOTE)


@st.fragment(run_every=live.REFRESH_S if running else None)
def panel() -> None:
    if not (folder / "spec.json").exists():
        st.info("Not launched yet: choose what to reproduce and press Launch.")
        return
    df = table.collect(folder)
    all_jobs = store.read_jobs(folder)
    done = sum(1 for j in all_jobs if store.read_cell(folder, j) is not None)
    _, state = driver_state(folder)
    st.progress(done / len(all_jobs) if all_jobs else 0.0, text=f"{done}/{len(all_jobs)} jobs done · driver: {state}")
    saved = runs.read_json(folder / "spec.json", {}) or {}
    for p in saved.get("protocols", []):
        sub = df[df["protocol"].isin([p, "published"])]
        if sub.empty:
            continue
        st.subheader(f"{PROTOCOL_TITLES[p]}: {PROTOCOLS[p]}")
        if p == "paper" and saved.get("paper_protocol"):
            st.caption(saved["paper_protocol"])
        grid = {}
        for r in saved.get("rows", []):
            line = {}
            for s in saved.get("settings", []):
                hit = sub[(sub["row"] == r["key"]) & (sub["setting"] == s["key"])]
                own = hit[hit["protocol"] == p]
                if not hit.empty:
                    line[s["title"]] = _cell((own if not own.empty else hit).iloc[0])
            if line:
                grid[r["label"]] = line
        st.dataframe(pd.DataFrame(grid).T, width="stretch", key=f"rep.grid.{p}")
        if p == "honest":
            verdict_panel()
    measured = df[df["protocol"] != "published"]
    if not measured.empty and measured["n"].sum() > 0:
        st.plotly_chart(table_figure(df, saved.get("metric", "accuracy")), key="rep.fig")
    with st.expander("Every cell (table.csv)"):
        st.dataframe(df.drop(columns=["setting"]), hide_index=True, width="stretch", key="rep.long",
                     column_config={k: st.column_config.NumberColumn(format="%.2f")
                                    for k in ("mean", "std", "published", "delta")})
    log = runs.log_tail(folder, 15)
    if log:
        with st.expander("Driver log"):
            st.code(log, language=None)


panel()
