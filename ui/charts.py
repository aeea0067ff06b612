"""Plotly figures built from what the run directory holds."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import plotly.graph_objects as go

# Keys of a metrics record that are bookkeeping, not curves.
_NOT_CURVES = {"step", "time", "phase", "steps_per_s", "img_per_s"}


def counts_figure(names: Sequence[str], before: Sequence[int], after: Sequence[int], log_y: bool = False) -> go.Figure:
    """Images per class before and after the imbalance, side by side."""
    fig = go.Figure([
        go.Bar(name="available", x=list(names), y=list(before), marker_color="#b0bec5"),
        go.Bar(name="kept (imbalanced)", x=list(names), y=list(after), marker_color="#1f77b4",
               text=list(after), textposition="outside"),
    ])
    fig.update_xaxes(type="category")  # class names like "0".."9" are labels, not numbers
    fig.update_layout(barmode="group", height=320, margin=dict(l=10, r=10, t=30, b=10),
                      yaxis_title="images", legend=dict(orientation="h", y=1.12))
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def metrics_frame(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def curve_keys(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Numeric logged keys split into losses and the other diagnostics (accuracies, fitness, ...)."""
    keys = [k for k in df.columns if k not in _NOT_CURVES and pd.api.types.is_numeric_dtype(df[k])]
    losses = [k for k in keys if "loss" in k or k in ("gp", "w_dist")]
    return losses, [k for k in keys if k not in losses]


def curves_figure(df: pd.DataFrame, keys: Sequence[str], title: str, runs_col: str | None = None) -> go.Figure:
    """One line per logged key (or per run and key, for comparisons) against the step."""
    fig = go.Figure()
    groups = df.groupby(runs_col) if runs_col else [(None, df)]
    for run, part in groups:
        for k in keys:
            if k in part and part[k].notna().any():
                p = part[["step", k]].dropna()
                fig.add_trace(go.Scatter(x=p["step"], y=p[k], mode="lines", name=f"{run} · {k}" if run else k))
    fig.update_layout(title=title, height=300, margin=dict(l=10, r=10, t=40, b=10), xaxis_title="step",
                      legend=dict(orientation="h", y=-0.25))
    return fig
