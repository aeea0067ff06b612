"""The convergence curves of ``bench/converge.py`` as one plotly figure: per-class FID against step,
one panel per method (small multiples), one line style per seed (and precision, and device). Needs plotly (the
app's); the bench skips the figure where plotly is missing."""

from __future__ import annotations

import json

DASHES = ["solid", "dot", "dash", "dashdot"]


def curve_figure(df, scenario: str, log_y: bool = True):
    """``df``: converge-<scenario>.csv's rows. Each panel shows every class's domain FID (colour = class,
    line style = seed, and precision where a method has curves in both) and the converged step of each
    curve (the rule's) as a vertical line."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    from imbagan import convergence
    from ui.charts import PALETTE

    methods = list(dict.fromkeys(df["method"]))
    cols = min(3, len(methods)) or 1
    rows = (len(methods) + cols - 1) // cols or 1
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=methods, shared_xaxes=False)
    shown: set[int] = set()
    for i, m in enumerate(methods):
        r, c = i // cols + 1, i % cols + 1
        part = df[df["method"] == m]
        # One curve per (precision, device, seed): a scenario with bench/precision.py's float32 check holds both
        # precisions of a seed, and a GPU's curve of a seed is another random draw than the CPU's; neither pair
        # may be drawn (or judged by the rule) as one zigzag line.
        part = convergence.with_device(part)
        keys = [k for k in ("precision", "device") if k in part.columns] + ["seed"]
        for j, (key, s) in enumerate(part.groupby(keys)):
            *tags, seed = key
            label = f"seed {seed}" + "".join(f" {t}" for k, t in zip(keys, tags) if part[k].nunique() > 1)
            s = s.sort_values("step")
            per = [json.loads(v) for v in s["fid_per_class"]]
            for k in range(len(per[0]) if per else 0):
                ys = [p[k] for p in per]
                if all(v is None for v in ys):
                    continue
                fig.add_trace(go.Scatter(x=s["step"], y=ys, mode="lines", name=f"class {k}", legendgroup=f"c{k}",
                                         showlegend=k not in shown,
                                         line=dict(color=PALETTE[k % 10], dash=DASHES[j % 4], width=1.2),
                                         hovertemplate=f"{m} {label} class {k}<br>step %{{x}}<br>FID %{{y:.3g}}"
                                                       "<extra></extra>"), row=r, col=c)
                shown.add(k)
            conv = convergence.converged_step(s["step"].astype(int).tolist(), s["fid_mean"].astype(float).tolist())
            if conv is not None:
                fig.add_vline(x=conv, line=dict(color="black", dash=DASHES[j % 4], width=1), row=r, col=c)
    fig.update_layout(title=f"Convergence on {scenario}: per-class domain FID (colour = class, line style = seed, "
                            "precision and device; vertical lines: converged step)", height=280 * rows + 80,
                      margin=dict(l=10, r=10, t=70, b=10))
    if log_y:
        fig.update_yaxes(type="log", dtick=1)
    return fig
