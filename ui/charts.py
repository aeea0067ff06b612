"""Plotly figures built from what the run directory holds."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import plotly.graph_objects as go

from ui.labels import label, tooltip

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]  # one colour per class, every chart

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
        # Powers of ten only: plotly's default log ticks read "5, 2, 1000, 5, 2, 100" (issue 23, 14).
        fig.update_yaxes(type="log", dtick=1, tickformat=",d")
    return fig


def metrics_frame(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def curve_keys(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Numeric logged keys split into losses and the other diagnostics (accuracies, fitness, ...)."""
    keys = [k for k in df.columns if k not in _NOT_CURVES and pd.api.types.is_numeric_dtype(df[k])]
    losses = [k for k in keys if "loss" in k or k in ("gp", "w_dist")]
    return losses, [k for k in keys if k not in losses]


def curves_figure(df: pd.DataFrame, keys: Sequence[str], title: str, runs_col: str | None = None,
                  run_names: dict | None = None, normalise: bool = False) -> go.Figure:
    """One line per logged key (or per run and key, for comparisons) against the step.

    Keys show by their readable label (ui.labels); runs by ``run_names`` (short run names).
    ``normalise``: each line divided by its own largest absolute value, so shapes compare across scales.
    """
    fig = go.Figure()
    groups = df.groupby(runs_col, sort=False) if runs_col else [(None, df)]
    for run, part in groups:
        for k in keys:
            if k in part and part[k].notna().any():
                p = part[["step", k]].dropna()
                y = p[k]
                if normalise:
                    top = float(y.abs().max())
                    y = y / top if top > 0 else y
                name = label(k) if run is None else (f"{(run_names or {}).get(run, run)}"
                                                     + (f" · {label(k)}" if len(keys) > 1 else ""))
                # Markers while a curve is short: a line through one point draws nothing (issue 23, 12).
                fig.add_trace(go.Scatter(x=p["step"], y=y, mode="lines+markers" if len(p) < 20 else "lines", name=name,
                                         hovertemplate=f"{name}<br>step %{{x}}<br>%{{y:.4g}}<extra>{tooltip(k) or ''}</extra>"))
    fig.update_layout(title=title, height=300, margin=dict(l=10, r=10, t=40, b=10), xaxis_title="step",
                      legend=dict(orientation="h", y=-0.25))
    return fig


# --- evaluation ------------------------------------------------------------------------------
CONDITION_COLOURS = {"imbalanced": "#9e9e9e", "oversample": "#ffb74d", "mirror": "#ba68c8", "smote": "#4db6ac",
                     "class_weight": "#a1887f", "gan": "#1f77b4", "full": "#2ca02c"}


def per_class_figure(conditions: dict, names: Sequence[str], metric: str, chosen: Sequence[str]) -> go.Figure:
    """Per-class precision, recall or F1 as grouped bars, one colour per training condition."""
    fig = go.Figure()
    for cond in chosen:
        rows = conditions[cond]["per_class"]
        fig.add_trace(go.Bar(name=cond, x=list(names), y=[r[metric] for r in rows],
                             marker_color=CONDITION_COLOURS.get(cond.split("_0")[0])))
    fig.update_xaxes(type="category")
    fig.update_layout(barmode="group", height=360, yaxis=dict(range=[0, 1.02], title=metric),
                      margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.12))
    return fig


def confusion_figure(matrix, names: Sequence[str], title: str) -> go.Figure:
    """A confusion matrix (rows true, columns predicted) as a heatmap with counts."""
    fig = go.Figure(go.Heatmap(z=matrix, x=list(names), y=list(names), colorscale="Blues", showscale=False,
                               text=matrix, texttemplate="%{text}", hovertemplate="true %{y}<br>predicted %{x}<br>%{z}"))
    fig.update_xaxes(type="category", title="predicted")
    fig.update_yaxes(type="category", title="true", autorange="reversed")
    fig.update_layout(title=title, height=380, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def tsne_figure(xy, labels, kind, names: Sequence[str], title: str) -> go.Figure:
    """t-SNE of classifier features: training points solid, generated ones as crosses, test translucent.

    The legend names each class once (click to hide it) and, in grey, what each marker means.
    """
    fig = go.Figure()
    styles = {0: ("train (real)", "circle", 0.85), 1: ("generated", "x", 0.85), 2: ("test", "circle", 0.15)}
    palette = PALETTE
    named: set[int] = set()
    for k in (2, 0, 1):  # test underneath
        name, symbol, alpha = styles[k]
        for c, cname in enumerate(names):
            sel = (kind == k) & (labels == c)
            if sel.any():
                fig.add_trace(go.Scattergl(x=xy[sel, 0], y=xy[sel, 1], mode="markers", name=f"class {cname}",
                                           legendgroup=f"class {cname}", showlegend=c not in named,
                                           hovertemplate=f"class {cname} · {name}<extra></extra>",
                                           marker=dict(size=5 if k != 1 else 6, symbol=symbol,
                                                       color=palette[c % len(palette)], opacity=alpha)))
                named.add(c)
    for k in (0, 1, 2):  # marker key: one grey entry per kind present
        name, symbol, alpha = styles[k]
        if (kind == k).any():
            fig.add_trace(go.Scattergl(x=[None], y=[None], mode="markers", name=name, legendgroup=f"kind {name}",
                                       marker=dict(size=8, symbol=symbol, color="#555555", opacity=max(alpha, 0.35))))
    fig.update_layout(title=title, height=460, margin=dict(l=10, r=10, t=40, b=10), showlegend=True,
                      legend=dict(orientation="v", itemsizing="constant"),
                      xaxis=dict(showticklabels=False), yaxis=dict(showticklabels=False))
    return fig


# --- convergence -------------------------------------------------------------------------------


def quality_figure(records: list[dict], names: Sequence[str], metric: str = "fid") -> go.Figure:
    """The live convergence curve: one line per modelled class (minority classes dashed) against the step.

    ``metric``: "fid" (domain FID, log scale, lower is better) or "class_acc" (0-1, higher is better).
    The mean over the classes, which the convergence rule reads, is the thick black line.
    """
    fig = go.Figure()
    steps = [r.get("adv_step", r.get("step")) for r in records]
    minority = set(records[-1].get("minority") or []) if records else set()
    k = len(records[-1].get(metric) or []) if records else 0
    for c in range(k):
        ys = [(r.get(metric) or [None] * k)[c] for r in records]
        if all(v is None for v in ys):
            continue
        name = str(names[c]) if c < len(names) else str(c)
        fig.add_trace(go.Scatter(x=steps, y=ys, mode="lines+markers", name=name,
                                 line=dict(color=PALETTE[c % len(PALETTE)], dash="dash" if c in minority else None),
                                 hovertemplate=f"{name}<br>step %{{x}}<br>%{{y:.3g}}<extra></extra>"))
    mean_key = f"{metric}_mean"
    fig.add_trace(go.Scatter(x=steps, y=[r.get(mean_key) for r in records], mode="lines", name="mean",
                             line=dict(color="black", width=3)))
    title = "Domain FID per class (lower is better)" if metric == "fid" else "Class accuracy per class"
    fig.update_layout(title=title, height=300, margin=dict(l=10, r=10, t=40, b=10), xaxis_title="adversarial step",
                      legend=dict(orientation="h", y=-0.25))
    if metric == "fid":
        fig.update_yaxes(type="log", dtick=1)  # powers of ten only (issue 23, 14)
    else:
        fig.update_yaxes(range=[0, 1.02])
    return fig
