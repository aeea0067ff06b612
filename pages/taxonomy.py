"""Taxonomy: the survey's map of imbalance in computer vision, its tables, and imbagan's methods on it.

A method's "Open in Train" button hands a preset to the Train page as ``st.session_state["train_preset"]``
(TrainConfig fields: method, data and imbalance, steps).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from imbagan.config import TrainConfig
from imbagan.imbalance import imbalance_ratio
from imbagan import catalog
from ui import charts, convergence_chart, widgets
from ui import labels
from ui import taxonomy as tx

st.title("A taxonomy of imbalance")
st.caption(f"After {tx.SURVEY}: §4 and its Fig. 2, Table 3 and Table 1. The explanations are ours.")

# Which of Table 3's categories belong to each level of the taxonomy.
LEVEL_CATEGORIES = {"Image level": ("Binary classification", "Multi-class classification"),
                    "Object level": ("Object detection",), "Pixel level": ("Segmentation",)}


def filtered_table(rows: list[tuple], columns: list[str], key: str, filter_cols: list[str]) -> pd.DataFrame:
    """A table with a text search over every column and a multiselect per ``filter_cols`` column."""
    df = pd.DataFrame(rows, columns=columns)
    cols = st.columns(len(filter_cols) + 1)
    text = cols[0].text_input("Search", key=f"{key}.search", placeholder="e.g. DCGAN, medical, face")
    for col, name in zip(cols[1:], filter_cols):
        pick = col.multiselect(name, list(dict.fromkeys(df[name])), key=f"{key}.{name}", placeholder="all")
        if pick:
            df = df[df[name].isin(pick)]
    if text.strip():
        hit = df.apply(lambda c: c.str.contains(text.strip(), case=False, regex=False)).any(axis=1)
        df = df[hit]
    st.dataframe(df, hide_index=True, width="stretch", key=f"{key}.table")
    return df


def illustrate(label: str, fields: dict, key: str) -> None:
    """Counts before/after for one of the app's own imbalance settings."""
    try:
        cfg = TrainConfig.from_dict(fields)
        names, before, after = widgets.preview(cfg)
        ir = imbalance_ratio(after)
    except (ValueError, FileNotFoundError) as e:
        st.error(str(e))
        return
    c1, c2 = st.columns([4, 1])
    c1.markdown(f"**{label}**")
    asked = fields.get("ir") if fields.get("imbalance") in ("binary", "step", "longtail") else None
    # The counts are whole images, so the ratio kept can differ from the one asked (10 -> 182 / 19 = 9.6).
    c2.metric("Imbalance ratio kept", f"{ir:.1f}",
              help=(f"Asked for {asked:g}; " if asked else "") + "largest class / smallest class of the images kept, "
                   "which are whole numbers.")
    st.plotly_chart(charts.counts_figure(names, before, after, log_y=ir > 20), key=key)


tab_levels, tab_methods, tab_t3, tab_t1 = st.tabs(
    ["Levels of imbalance", "Try it in imbagan", "Methods (survey Table 3)", "GAN variants (survey Table 1)"])

with tab_levels:
    level = st.radio("Level", list(tx.LEVELS), horizontal=True, key="tax.level",
                     format_func=lambda lv: f"{lv} ({tx.LEVELS[lv]['task']})")
    info = tx.LEVELS[level]
    st.markdown(f"{info['summary']} *(survey {info['section']})*")
    kind = st.selectbox("Type of imbalance", list(info["types"]), key=f"tax.type.{level}")
    st.markdown(info["types"][kind])
    shows = tx.ILLUSTRATIONS.get(kind, [])
    if shows:
        st.markdown("**On this app's digits dataset:**")
        for i, (label, fields) in enumerate(shows):
            illustrate(label, fields, key=f"tax.ill.{kind}.{i}")
    else:
        st.caption("imbagan trains image classifiers with class labels only, so this type is described here "
                   "rather than reproduced.")
    cats = LEVEL_CATEGORIES[level]
    studies = [r for r in tx.TABLE3 if r[0] in cats]
    with st.expander(f"Studies the survey lists at this level ({len(studies)})"):
        st.dataframe(pd.DataFrame(studies, columns=tx.TABLE3_COLUMNS), hide_index=True, width="stretch",
                     key="tax.level_studies")

with tab_methods:
    st.info(tx.VERDICT_TEXT, icon="⚖️")
    verdicts = tx.verdict_tables(tx.RESULTS)
    summary, answer = tx.verdict_summary(verdicts)
    if answer:
        st.markdown(answer)
        st.dataframe(summary, hide_index=True, width="stretch", key="tax.verdict_summary")
        st.caption("ACSA in %, mean ± std over each verdict's (GAN seed, classifier seed) pairs; differences in "
                   "points, ± their standard error. Each table below has every condition, its budget and its machine.")
    for v in verdicts:
        # The verdict's text names the condition ("gan: ..."); the title names the method that trained it.
        said = "; ".join(t.removeprefix("gan: ") for t in v["verdict"]) or "no GAN condition"
        with st.expander(f"{v['gan']} on {v['setting']}: {said}",
                         expanded=not answer and v["trained"].startswith("converged")):
            st.caption(v["caption"])
            if not v["trained"].startswith("converged"):
                st.warning(f"The GAN of this table was trained below its method's measured budget ({v['trained']}): "
                           "it had not converged, so this verdict says little about the method.")
            st.dataframe(v["table"], hide_index=True, width="stretch", key=f"tax.verdict.{v['path'].stem}")
    tables = tx.quality_tables(tx.RESULTS)
    short = tx.answer(tables)
    if short:
        st.markdown(short)
    if tables:
        st.markdown("**Which method to try first:** the newest `bench/quality.py` table of each scenario, every "
                    "method with its paper defaults (and, where measured, with DiffAugment or LeCam). The recall and "
                    "ACSA columns set the classifier trained on the imbalanced set beside the one trained on the set "
                    "topped up with the method's images; the Evaluate page also sets it beside the cheap fixes.")
        for t in tables:
            st.caption(t["caption"])
            if t["converged_rows"] < t["rows"]:
                st.warning(f"{t['rows'] - t['converged_rows']} of {t['rows']} rows of this table were trained for "
                           "fewer steps than their method's measured budget, or where none is measured (column "
                           "*trained*): those GANs had not converged, and their numbers say little about the method.")
            cols = list(t["table"].columns)
            st.dataframe(t["table"], hide_index=True, width="stretch", key=f"tax.quality.{t['path'].stem}",
                         column_config={c: st.column_config.NumberColumn(labels.label(c), help=labels.tooltip(c),
                                                                         format=labels.number_format(c))
                                        for c in cols if c not in ("method", "options")})
    conv = tx.convergence_tables(tx.RESULTS)
    if conv:
        with st.expander("How long each method must train: convergence curves (bench/converge.py)"):
            st.markdown("Each method trained with its paper defaults, two GAN seeds, until the convergence rule "
                        "confirmed its curve. The Train form starts from these budgets and warns below them.")
            for c in conv:
                st.caption(c["caption"])
                st.dataframe(c["summary"], hide_index=True, width="stretch", key=f"tax.conv.{c['scenario']}")
                st.plotly_chart(convergence_chart.curve_figure(c["curves"], c["scenario"]),
                                key=f"tax.convfig.{c['scenario']}")
    st.markdown("Every method imbagan implements works at the **image level**, on inter-class imbalance. "
                "Each button opens the Train page with a setting that shows the method at work; "
                "change anything there before launching.")
    for key, card in catalog.methods().items():
        with st.container(border=True):
            st.markdown(f"**{card.title or key}** · `{key}`")
            if card.taxonomy:
                st.caption(card.taxonomy)
            if card.summary:
                st.markdown(card.summary)
            if not card.demo:
                st.caption("No demonstration setting for this method.")
                continue
            st.markdown(card.demo["shows"])
            if st.button("Open in Train with this setting", key=f"tax.try.{key}"):
                st.session_state["train_preset"] = dict(card.demo["config"])
                st.switch_page("pages/train.py")

with tab_t3:
    st.caption(tx.TABLE3_NOTE)
    filtered_table(tx.TABLE3, tx.TABLE3_COLUMNS, "tax.t3", ["category", "imbalance type"])

with tab_t1:
    st.caption(tx.TABLE1_NOTE)
    filtered_table(tx.TABLE1, tx.TABLE1_COLUMNS, "tax.t1", ["category"])
