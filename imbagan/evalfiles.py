"""An evaluation's folder, RUN/eval/: writing its results, the t-SNE cache, and reading it all back for the page.

    eval/config.json   the EvalConfig          eval/status.json  {"state", "progress", "phase", "pid", ...}
    eval/metrics.json  all numbers             eval/report.csv   one row per (condition, class) + summaries
    eval/quality.csv   per-class image quality eval/tsne.npz     xy_before, xy_after, labels, kind, classes, hash
    eval/log.txt       the log

The evaluation process (imbagan.evaluate) writes; the Evaluate page reads with ``read_evaluation``.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from imbagan import runs

KINDS = ("train (real)", "generated", "test")  # tsne.npz's kind codes 0, 1, 2


def tsne(ev: Path, embed: Callable[[np.ndarray], np.ndarray], sets: list[tuple[np.ndarray, np.ndarray]],
          names: list[str], points: int, seed: int) -> dict:
    """AGGAN §5.3 / Fig. 4a: reference features of real train (kind 0), generated (1) and test (2) images.

    One embedding of all three kinds: "after" is all of it, "before" the same coordinates with the rows of
    generated images NaN (so the two panels share their axes). A
    re-run with the same features reuses eval/tsne.npz (the hash covers features, labels and kinds).
    """
    from imbagan import quality as q

    rng = np.random.default_rng(seed)
    total = sum(len(y) for _, y in sets)
    xs, labels, kind = [], [], []
    for i, (x, y) in enumerate(sets):  # each kind keeps its share of the points
        n = min(len(y), int(round(points * len(y) / total))) if total > points else len(y)
        idx = np.sort(rng.choice(len(y), n, replace=False))
        xs.append(x[idx])
        labels.append(y[idx])
        kind.append(np.full(n, i, dtype=np.int8))
    labels, kind = np.concatenate(labels), np.concatenate(kind)
    feats = embed(np.concatenate(xs)).astype(np.float32)
    h = hashlib.sha256(f"openTSNE perplexity<=30 seed={seed} one map".encode())
    for a in (feats, labels, kind):
        h.update(np.ascontiguousarray(a).tobytes())
    digest, path = h.hexdigest(), ev / "tsne.npz"
    try:
        with np.load(path) as z:
            if str(z["hash"]) == digest:
                return {"points": int(len(labels)), "cached": True}
    except (OSError, KeyError, ValueError):
        pass
    # One map for both panels: "after" embeds every point, "before" is the same map without the generated
    # images, so a real digit sits at the same place in both and the eye sees only what the GAN adds (and half
    # the cost of two embeddings). Without generated images there is only "before".
    generated = kind == 1
    xy = q.tsne(feats, seed)
    xy_before = xy.copy()
    xy_before[generated] = np.nan
    xy_after = xy if generated.any() else np.full_like(xy, np.nan)
    tmp = ev / f".tsne.{os.getpid()}.tmp.npz"
    np.savez_compressed(tmp, xy_before=xy_before, xy_after=xy_after, labels=labels, kind=kind,
                        classes=np.array(names), features=feats, hash=np.array(digest))
    os.replace(tmp, path)
    return {"points": int(len(labels)), "cached": False}


# --- files -------------------------------------------------------------------------------------
def _clean(o):
    """JSON without NaN/inf (the page's JavaScript cannot read them): None instead."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, np.generic):
        return _clean(o.item())
    return o


def _write_csv(df, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)


def write_results(ev: Path, result: dict) -> None:
    import pandas as pd

    rows = []
    for cond, m in result["conditions"].items():
        rows += [{"condition": cond, **r} for r in m["per_class"]]
        macro = pd.DataFrame(m["per_class"])[["precision", "recall", "f1"]].mean()
        rows.append({"condition": cond, "class": "all", **macro.to_dict(),
                     "support": sum(r["support"] for r in m["per_class"]), "accuracy": m["accuracy"],
                     "acsa": m["acsa"], "gmean": m["gmean"], "macro_f1": m["macro_f1"],
                     "minority_recall": m["minority"]["recall"]})
    cols = ["condition", "class", "precision", "recall", "f1", "support", "accuracy", "acsa", "gmean",
            "macro_f1", "minority_recall"]
    _write_csv(pd.DataFrame(rows, columns=cols), ev / "report.csv")
    if result.get("quality"):
        _write_csv(pd.DataFrame(result["quality"]["per_class"]), ev / "quality.csv")
    runs.write_json_atomic(ev / "metrics.json", _clean(result))


def read_evaluation(run_dir: str | os.PathLike) -> dict | None:
    """What the page draws: status, config, metrics, report and quality records, t-SNE arrays.

    None if the run was never evaluated. Any part not written yet is None; "metrics" fills in
    condition by condition while the evaluation runs.
    """
    ev = Path(run_dir) / "eval"
    if not (ev / "status.json").exists():
        return None
    import pandas as pd

    st = runs.read_status(ev)
    if st.get("error") and "training process" in st["error"]:
        st["error"] = st["error"].replace("training process", "evaluation process")

    def records(name: str) -> list[dict] | None:
        try:
            return pd.read_csv(ev / name).to_dict("records")
        except (FileNotFoundError, pd.errors.EmptyDataError):
            return None

    tsne = None
    try:
        with np.load(ev / "tsne.npz") as z:
            tsne = {key: z[key] for key in ("xy_before", "xy_after", "labels", "kind", "classes")}
    except (OSError, KeyError, ValueError):
        pass
    return {"status": st, "config": runs.read_json(ev / "config.json"),
            "metrics": runs.read_json(ev / "metrics.json"), "report": records("report.csv"),
            "quality": records("quality.csv"), "tsne": tsne}


def evaluable_runs() -> list:
    """The runs the Evaluate page offers: trained ones (done, or stopped with a checkpoint), and those whose
    evaluation was launched with their training (it waits for the GAN)."""
    return [r for r in runs.list_runs()
            if (r.state in ("done", "stopped") and (r.dir / "checkpoint.pt").exists())
            or (r.dir / "eval" / "status.json").exists()]


def eta_s(status: dict, now: float | None = None) -> float | None:
    """Seconds left of a running evaluation: the worker's own estimate while it trains classifiers (a
    "<condition>: ..." or "N classifiers: ..." phase), else from its progress and elapsed time; None this early."""
    p, started = float(status.get("progress") or 0.0), status.get("started")
    if status.get("eta_s") is not None and ":" in str(status.get("phase") or ""):
        return float(status["eta_s"])
    if started and p >= 0.02:
        elapsed = max(0.0, (time.time() if now is None else now) - float(started))
        return elapsed * (1 - p) / p
    return None
