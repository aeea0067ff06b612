"""The Reproduce page's figure: published numbers beside ours under each protocol, per setting."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

def plan(spec, budget_name: str, settings: list[str], rows: list[str], repeats: int) -> dict:
    """What Launch would start, without torch: {"jobs", "gan_jobs", "seconds" (None when a GAN has no measured
    pace), "unknown": [methods without a measured pace]} from the methods' measured budgets (imbagan.budgets)."""
    from imbagan import budgets

    budget = spec.budgets[budget_name]
    chosen = [r for r in spec.rows if r.key in rows]
    gan_rows = [r for r in chosen if r.kind == "gan"]
    cls = [r for r in chosen if r.kind == "classifier"]
    n_gan = len(settings) * repeats * len(gan_rows)
    n_other = len(settings) * repeats * ((1 if cls and "honest" in spec.protocols else 0)
                                         + (len([r for r in cls if r.paper]) if "paper" in spec.protocols else 0))
    seconds, unknown = 0.0, []
    for key in settings:
        ds = spec.setting(key).dataset
        for r in gan_rows:
            b = budgets.measured(r.method, budgets.family(ds))
            steps = (b["steps"] if b and budget.measured_steps else budget.steps) if not budget.train.get("epochs") else None
            if b and b.get("seconds_per_step") and steps:
                seconds += repeats * steps * b["seconds_per_step"]
            elif r.method not in unknown:
                unknown.append(r.method)
    return {"jobs": n_gan + n_other, "gan_jobs": n_gan, "seconds": None if unknown else seconds, "unknown": unknown}


COLORS = {"published": "#9e9e9e", "paper": "#ff7f0e", "honest": "#1f77b4"}
NAMES = {"published": "published", "paper": "ours, paper protocol (test-selected, as published)",
         "honest": "ours, honest protocol (fixed budget, untouched test split)"}


def table_figure(df: pd.DataFrame, metric: str = "accuracy") -> go.Figure:
    """One panel per setting; per row, bars for the published number and ours ± std under each protocol."""
    settings = list(dict.fromkeys(df["setting_title"]))
    cols = min(3, max(1, len(settings)))
    nrows = math.ceil(len(settings) / cols) if settings else 1
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=settings, shared_yaxes=True,
                        vertical_spacing=0.18, horizontal_spacing=0.04)
    shown = set()
    for i, title in enumerate(settings):
        sub = df[df["setting_title"] == title]
        labels = list(dict.fromkeys(sub["row_label"]))
        series = {"published": sub.drop_duplicates("row_label").set_index("row_label")["published"]}
        for p in ("paper", "honest"):
            own = sub[sub["protocol"] == p].set_index("row_label")
            if not own.empty:
                series[p] = own
        for key, s in series.items():
            if key == "published":
                y, err = [s.get(r) for r in labels], None
            else:
                y = [s["mean"].get(r) for r in labels]
                err = dict(type="data", array=[s["std"].get(r) for r in labels], visible=True)
            fig.add_trace(go.Bar(name=NAMES[key], x=labels, y=y, error_y=err, marker_color=COLORS[key],
                                 legendgroup=key, showlegend=key not in shown),
                          row=i // cols + 1, col=i % cols + 1)
            shown.add(key)
    fig.update_layout(barmode="group", height=340 * nrows, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.15))
    fig.update_yaxes(title_text=f"{metric} (%)", col=1)
    return fig
