"""The Compare page's table: one row per run's GAN condition, and each baseline once per data setting.

The baselines (imbalanced, oversample, mirror, smote, class_weight, full, ...) do not depend on the
GAN: two runs on the same data, imbalance and evaluation settings get the same numbers, so they are
shown once, not once per run. Plain pandas, no Streamlit.
"""

from __future__ import annotations

import json

import pandas as pd

from imbagan import runs

# The config fields that decide the data a baseline classifier sees.
DATA_KEYS = ("dataset", "data_root", "image_size", "channels", "imbalance", "ir", "drop", "minority", "majority",
             "counts", "seed")
# Evaluation settings that do not change the baselines' numbers.
_EVAL_COSMETIC = ("tsne_points", "quality_images", "ssim_pairs", "device", "conditions", "blend")


def is_baseline(condition) -> bool:
    """Every evaluated condition except the run's own GAN ones (gan, gan_0.5, ...) is a baseline."""
    return isinstance(condition, str) and not condition.startswith("gan")


def _setting(r: runs.RunInfo) -> str:
    """A key for what a baseline depends on: the run's data and imbalance, and the evaluation's settings."""
    data = {k: r.config.get(k) for k in DATA_KEYS}
    ev = runs.read_json(r.dir / "eval" / "config.json", {}) or {}
    ev = {k: v for k, v in ev.items() if k not in _EVAL_COSMETIC}
    return json.dumps([data, ev], sort_keys=True, default=str)


def table(raw: pd.DataFrame, rs: list[runs.RunInfo], names: dict[str, str]) -> pd.DataFrame:
    """``raw`` (imbagan.preview.compare_table) with readable run names and each baseline row once per setting.

    Columns: ``id`` (the run id; empty for baselines), ``run`` (short name, or "baseline"), ``kind``
    ("GAN" for a run's own rows, "baseline"), then raw's columns.
    """
    setting = {r.id: _setting(r) for r in rs}
    df = raw.copy()
    df.insert(0, "id", df["run"])
    df["run"] = df["id"].map(names).fillna(df["id"])
    base = df["condition"].map(is_baseline)
    df.insert(2, "kind", base.map({True: "baseline", False: "GAN"}))
    df["setting"] = df["id"].map(setting)
    # raw is newest run first: the newest evaluation of a setting stands for it.
    once = df[base].drop_duplicates(subset=["setting", "condition"], keep="first").copy()
    once["run"] = "baseline"
    once["method"] = None
    once["steps"] = None
    once["state"] = None
    once["id"] = None
    return pd.concat([df[~base], once], ignore_index=True).drop(columns="setting")


def sort(df: pd.DataFrame, by: str, descending: bool, gan_first: bool) -> pd.DataFrame:
    """Sorted by ``by``; with ``gan_first`` the runs' own rows come before the baselines, each group sorted."""
    keys, asc = ([by], [not descending])
    if gan_first:
        df = df.assign(_b=df["kind"].eq("baseline"))
        keys, asc = ["_b", by], [True, not descending]
    out = df.sort_values(keys, ascending=asc, na_position="last", kind="stable")
    return out.drop(columns="_b", errors="ignore")
