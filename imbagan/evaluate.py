"""Did balancing help, for which classes, and are the generated images any good?

For a trained run this trains the same classifier on several versions of its training set and tests
each on the run's untouched test split (BAGAN §5.2, AGGAN §5.2):

    imbalanced     the imbalanced training set as is (AGGAN's "CN")
    oversample     random oversampling to the largest class (imblearn RandomOverSampler; AGGAN "Os+CN")
    mirror         horizontally mirrored copies of minority images (BAGAN §5.2's "mirror")
    smote          SMOTE on flattened pixels (imblearn)
    class_weight   the imbalanced set with a "balanced" class-weighted loss (scikit-learn's weights)
    gan            the imbalanced set topped up with the run's generated images (BAGAN §5.2);
                   gan_0.5 etc. fill only that fraction of each class's gap
    full           the original balanced training set: the ceiling

It then judges the generated images with a reference classifier trained on the full real set (the
"full" condition's): class accuracy, SSIM diversity and memorisation, domain FID (BAGAN §5.1), and
draws AGGAN §5.3's t-SNE of features before/after balancing. Everything goes to RUN/eval/:

    eval/config.json   the EvalConfig          eval/status.json  {"state", "progress", "phase", "pid", ...}
    eval/metrics.json  all numbers             eval/report.csv   one row per (condition, class) + summaries
    eval/quality.csv   per-class image quality eval/tsne.npz     xy_before, xy_after, labels, kind, classes, hash
    eval/log.txt       the log

Like training it runs in its own process (``start_evaluation``); the page reads ``read_evaluation``.
The pieces: imbagan.trainsets builds the training sets, imbagan.classifiers trains and applies the
classifiers, imbagan.quality computes the numbers; this module runs them and writes the files.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import json
import math
import os
import re
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from imbagan import runs

CONDITIONS = ("imbalanced", "oversample", "mirror", "smote", "class_weight", "gan", "full")
CLASSIFIERS = ("cnn", "resnet18")  # keys of imbagan.classifiers.BUILDERS (kept here so the config imports light)
KINDS = ("train (real)", "generated", "test")  # tsne.npz's kind codes 0, 1, 2


@dataclass(frozen=True)
class EvalConfig:
    classifier: str = "cnn"  # cnn (small, fast) | resnet18 (BAGAN §5.1's, stem adapted to small images)
    width: int = 32  # cnn: channels of its first block (then x2, x4); resnet18 ignores it
    epochs: int = 15  # budget in epochs of the balanced set; every condition gets the same number of steps
    batch_size: int = 128  # images per classifier step
    lr: float = 1e-3  # AdamW learning rate, cosine-decayed to 0 over the budget
    seed: int = 0  # initial weights, batch order, resampling, generated noise, subsampling
    conditions: tuple[str, ...] = CONDITIONS  # training sets to compare (see the module docstring)
    blend: tuple[float, ...] = (1.0,)  # gan: fractions of each class's gap filled; 1.0 -> "gan", 0.5 -> "gan_0.5"
    tsne_points: int = 3000  # points in the t-SNE plots (0: no t-SNE)
    quality_images: int = 500  # generated images per class for class accuracy and domain FID (0: no quality)
    ssim_pairs: int = 200  # per class: image couples for SSIM diversity, and queries for nearest-neighbour SSIM
    device: str = "auto"  # auto (cuda, then mps, then cpu) | cuda | cuda:N | mps | cpu

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise ValueError(msg)

        if self.classifier not in CLASSIFIERS:
            bad(f"classifier must be one of {', '.join(CLASSIFIERS)} (got {self.classifier!r}).")
        if self.width < 1:
            bad(f"width must be at least 1 (got {self.width}).")
        if self.epochs < 1 or self.batch_size < 2:
            bad("epochs must be at least 1 and batch_size at least 2 (batch norm needs two images).")
        if not 0 < self.lr < 1:
            bad(f"lr must be between 0 and 1 (got {self.lr}).")
        if self.seed < 0:
            bad(f"seed cannot be negative (got {self.seed}).")
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown or not self.conditions or len(set(self.conditions)) != len(self.conditions):
            bad(f"conditions must be distinct names among {', '.join(CONDITIONS)} (got {self.conditions}).")
        if not self.blend or any(not 0 < r <= 1 for r in self.blend) or len(set(self.blend)) != len(self.blend):
            bad(f"blend ratios must be distinct fractions in (0, 1] (got {self.blend}).")
        if self.tsne_points != 0 and self.tsne_points < 10:
            bad(f"tsne_points must be 0 (no t-SNE) or at least 10 (got {self.tsne_points}).")
        if self.quality_images < 0 or self.ssim_pairs < 0:
            bad("quality_images and ssim_pairs cannot be negative.")
        if not (self.device in ("auto", "cpu", "mps", "cuda") or self.device.startswith("cuda:")):
            bad(f"device must be auto, cpu, mps, cuda or cuda:N (got {self.device!r}).")

    def condition_names(self) -> list[str]:
        """The conditions in report order, with one gan entry per blend ratio."""
        out = []
        for c in self.conditions:
            out += [gan_name(r) for r in self.blend] if c == "gan" else [c]
        return out

    def replace(self, **changes: Any) -> "EvalConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvalConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        if set(d) - known:
            raise ValueError(f"Unknown evaluation settings: {', '.join(sorted(set(d) - known))}.")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def save(self, path: Path) -> None:
        runs.write_json_atomic(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: Path) -> "EvalConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


# The trailing comment of each field, for --help and the page's tooltips.
FIELD_HELP = {m.group(1): m.group(2).strip() for m in
              re.finditer(r"^\s+(\w+): [^=]+=[^#\n]*#\s*(.+)$", inspect.getsource(EvalConfig), re.M)}


def gan_name(ratio: float) -> str:
    return "gan" if ratio == 1 else f"gan_{ratio:g}"


class EvaluationStopped(Exception):
    """Raised by the evaluation process's SIGTERM handler."""


# --- the evaluation ----------------------------------------------------------------------------
def evaluate_run(run_dir: str | os.PathLike, cfg: EvalConfig | None = None,
                 log: Callable[[str], None] | None = print, log_file: bool = True) -> dict:
    """Evaluate the run in ``run_dir`` into ``run_dir/eval``; returns what metrics.json holds.

    ``cfg`` None: the saved eval/config.json if there is one, else the defaults. Lines go to ``log``
    and (unless ``log_file`` is False, when stdout already is that file) to eval/log.txt.
    """
    d = Path(run_dir)
    ev = d / "eval"
    ev.mkdir(exist_ok=True)
    if os.environ.get("IMBAGAN_THREADS"):  # as in training: small nets run faster on fewer CPU threads
        import torch

        torch.set_num_threads(max(1, int(os.environ["IMBAGAN_THREADS"])))
    if cfg is None:
        cfg = EvalConfig.load(ev / "config.json") if (ev / "config.json").exists() else EvalConfig()
    cfg.save(ev / "config.json")
    for stale in ("metrics.json", "report.csv", "quality.csv"):  # tsne.npz stays: it is a cache
        (ev / stale).unlink(missing_ok=True)

    def say(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        if log is not None:
            log(line)
        if log_file:
            with open(ev / "log.txt", "a") as f:
                f.write(line + "\n")

    status = runs.StatusWriter(ev)
    status.update(state="running", pid=os.getpid(), progress=0.0, phase="loading data", error=None,
                  started=time.time(), finished=None)
    status.start_heartbeat()
    try:
        out = _evaluate(d, ev, cfg, status, say)
        status.update(state="done", progress=1.0, phase="done", finished=time.time())
        return out
    except BaseException as e:
        from imbagan.train import StopRequested  # SIGTERM in a training worker evaluating after training

        stopped = isinstance(e, (EvaluationStopped, KeyboardInterrupt, StopRequested))
        status.update(state="stopped" if stopped else "failed", phase="stopped" if stopped else "failed",
                      error=None if stopped else f"{type(e).__name__}: {e}", finished=time.time())
        say("stopped" if stopped else f"failed: {type(e).__name__}: {e}")
        raise
    finally:
        status.close()


def _evaluate(d: Path, ev: Path, cfg: EvalConfig, status: runs.StatusWriter, say) -> dict:
    import torch

    from imbagan import classifiers as clf
    from imbagan import quality as q
    from imbagan import trainsets as ts
    from imbagan.config import TrainConfig, resolve_device
    from imbagan.train import load_split

    t_all = time.perf_counter()
    run_cfg = TrainConfig.load(d / "config.json")
    device = resolve_device(cfg.device)
    train, kept = load_split(run_cfg, "train")
    test, _ = load_split(run_cfg, "test")
    full = ts.full_set(run_cfg, kept)
    names, k = list(train.classes), len(train.classes)
    counts = np.bincount(train.y, minlength=k).tolist()
    minority = int(np.argmin(counts))  # AGGAN Fig. 3's minority: the fewest training images
    # One budget for all: `epochs` passes over a set balanced at the largest class.
    steps = cfg.epochs * math.ceil(k * max(counts) / cfg.batch_size)
    say(f"evaluating {d.name}: {run_cfg.dataset}, {k} classes, train counts {counts}, test {len(test)} images; "
        f"{cfg.classifier} for {steps} steps per condition on {device}")
    timing: dict[str, Any] = {"device": str(device), "steps_per_condition": steps, "conditions": {}}
    t = time.perf_counter()
    pool, no_gen = ts.generate_pool(d, run_cfg, counts, cfg.quality_images, cfg.seed, device, say)
    timing["generate_s"] = time.perf_counter() - t

    todo = cfg.condition_names()
    need_ref = (cfg.quality_images > 0 or cfg.tsne_points > 0) and bool(pool)
    n_models = len(todo) + (need_ref and "full" not in todo)
    # Progress: classifier steps, then image quality and t-SNE at an eighth of the training work each.
    train_units = n_models * steps
    done_units = 0
    result: dict[str, Any] = {
        "run": {"id": d.name, "dataset": run_cfg.dataset, "method": run_cfg.method, "imbalance": run_cfg.imbalance,
                "classes": names, "train_counts": counts, "test_counts": np.bincount(test.y, minlength=k).tolist(),
                "minority": minority, "classes_modeled": sorted(pool), "no_generator": no_gen},
        "conditions": {}, "skipped": {}, "quality": None, "tsne": None, "timing": timing, "config": cfg.to_dict()}

    def condition_set(name: str) -> tuple[np.ndarray, np.ndarray, Any, str]:
        """(x, y, class weights or None, note) for one condition."""
        if name == "imbalanced":
            return train.x, train.y, None, ""
        if name == "oversample":
            return (*ts.oversample(train.x, train.y, cfg.seed), None, "")
        if name == "mirror":
            return (*ts.mirror(train.x, train.y, cfg.seed), None, "")
        if name == "smote":
            x, y, note = ts.smote(train.x, train.y, cfg.seed)
            return x, y, None, note
        if name == "class_weight":
            w = torch.tensor(ts.class_weights(train.y, k), dtype=torch.float32, device=device)
            return train.x, train.y, w, ""
        if name == "full":
            return full.x, full.y, None, "the run's dataset without imbalance"
        ratio = 1.0 if name == "gan" else float(name.split("_", 1)[1])
        x, y, n_gen = ts.gan_topup(train.x, train.y, pool, ratio)
        return x, y, None, f"{n_gen} generated images"

    def fit(x: np.ndarray, y: np.ndarray, weight, label: str):
        nonlocal done_units
        base = done_units

        def report(step: int, loss) -> None:
            status.update(progress=min(0.99, 0.8 * (base + step) / train_units),
                          phase=f"{label}: step {step}/{steps}", loss=float(loss))  # the one host sync per report

        xd = torch.from_numpy(np.ascontiguousarray(x)).to(device)
        yd = torch.from_numpy(y.astype(np.int64)).to(device)
        model = clf.fit(xd, yd, k, arch=cfg.classifier, width=cfg.width, steps=steps, batch_size=cfg.batch_size,
                        lr=cfg.lr, seed=cfg.seed, class_weight=weight, report_every=max(1, steps // 20),
                        on_report=report)
        done_units += steps
        return model

    x_test = torch.from_numpy(test.x).to(device)
    reference = None  # trained on the full real set: AGGAN §5.3's and BAGAN §5.1's reference classifier
    for name in todo:
        if name.startswith("gan") and not pool:
            result["skipped"][name] = f"no generated images: {no_gen}"
            say(f"{name}: skipped ({no_gen})")
            continue
        t = time.perf_counter()
        status.update(phase=f"{name}: building the training set")
        x, y, weight, note = condition_set(name)
        model = fit(x, y, weight, name)
        m = q.classification_metrics(test.y, clf.predict(model, x_test).cpu().numpy(), names, minority)
        m.update(train_size=int(len(y)), train_counts=np.bincount(y, minlength=k).tolist(), note=note,
                 seconds=time.perf_counter() - t)
        result["conditions"][name] = m
        timing["conditions"][name] = m["seconds"]
        say(f"{name:>12}: {len(y)} images  acc {m['accuracy']:.3f}  ACSA {m['acsa']:.3f}  G-mean {m['gmean']:.3f}  "
            f"macro F1 {m['macro_f1']:.3f}  minority recall {m['minority']['recall']:.3f}  ({m['seconds']:.1f} s)"
            + (f"  [{note}]" if note else ""))
        if name == "full":
            reference = model
        _write_results(ev, result)  # partial results for the page while the rest trains
    if need_ref and reference is None:
        t = time.perf_counter()
        reference = fit(full.x, full.y, None, "reference (full real set)")
        timing["reference_s"] = time.perf_counter() - t
    if not pool and (cfg.quality_images > 0 or cfg.tsne_points > 0):
        say(f"no image quality or t-SNE: {no_gen}")

    def predict(x: np.ndarray) -> np.ndarray:
        return clf.predict(reference, torch.from_numpy(x).to(device)).cpu().numpy()

    def embed(x: np.ndarray) -> np.ndarray:
        return clf.features(reference, torch.from_numpy(x).to(device)).cpu().numpy()

    if reference is not None and cfg.quality_images > 0:
        status.update(phase="image quality", progress=0.8)
        t = time.perf_counter()
        result["quality"] = q.generated_quality(pool, train, full, predict, embed, cfg.quality_images,
                                                cfg.ssim_pairs, cfg.seed, device)
        timing["quality_s"] = time.perf_counter() - t
        ov = result["quality"]["overall"]
        say(f"quality: class accuracy {ov['class_accuracy']:.3f}, SSIM gen {ov['ssim_gen']:.3f} vs real "
            f"{ov['ssim_real']:.3f}, NN-SSIM gen {ov['nn_ssim_gen']:.3f} vs real {ov['nn_ssim_real']:.3f}, "
            f"domain FID {ov['domain_fid']:.2f} ({timing['quality_s']:.1f} s)")
    if reference is not None and cfg.tsne_points > 0:
        status.update(phase="t-SNE", progress=0.9)
        t = time.perf_counter()
        gap = {c: max(counts) - counts[c] for c in pool}  # the "gan" condition's generated images
        gen_x = np.concatenate([pool[c][:gap[c]] for c in pool])
        gen_y = np.concatenate([np.full(gap[c], c, dtype=np.int64) for c in pool])
        result["tsne"] = _tsne(ev, embed, [(train.x, train.y), (gen_x, gen_y), (test.x, test.y)], names, cfg)
        timing["tsne_s"] = time.perf_counter() - t
        say(f"t-SNE of {result['tsne']['points']} points: {'reused' if result['tsne']['cached'] else 'computed'} "
            f"in {timing['tsne_s']:.1f} s")
    timing["total_s"] = time.perf_counter() - t_all
    _write_results(ev, result)
    say(f"evaluation done in {timing['total_s']:.1f} s")
    return result


def _tsne(ev: Path, embed: Callable[[np.ndarray], np.ndarray], sets: list[tuple[np.ndarray, np.ndarray]],
          names: list[str], cfg: EvalConfig) -> dict:
    """AGGAN §5.3 / Fig. 4a: reference features of real train (kind 0), generated (1) and test (2) images.

    "before" embeds kinds 0 and 2 (its rows of generated images are NaN), "after" all three. A
    re-run with the same features reuses eval/tsne.npz (the hash covers features, labels and kinds).
    """
    from imbagan import quality as q

    rng = np.random.default_rng(cfg.seed)
    total = sum(len(y) for _, y in sets)
    xs, labels, kind = [], [], []
    for i, (x, y) in enumerate(sets):  # each kind keeps its share of the points
        n = min(len(y), int(round(cfg.tsne_points * len(y) / total))) if total > cfg.tsne_points else len(y)
        idx = np.sort(rng.choice(len(y), n, replace=False))
        xs.append(x[idx])
        labels.append(y[idx])
        kind.append(np.full(n, i, dtype=np.int8))
    labels, kind = np.concatenate(labels), np.concatenate(kind)
    feats = embed(np.concatenate(xs)).astype(np.float32)
    h = hashlib.sha256(f"openTSNE perplexity<=30 seed={cfg.seed}".encode())
    for a in (feats, labels, kind):
        h.update(np.ascontiguousarray(a).tobytes())
    digest, path = h.hexdigest(), ev / "tsne.npz"
    try:
        with np.load(path) as z:
            if str(z["hash"]) == digest:
                return {"points": int(len(labels)), "cached": True}
    except (OSError, KeyError, ValueError):
        pass
    before = kind != 1
    xy_before = np.full((len(labels), 2), np.nan, dtype=np.float32)
    xy_before[before] = q.tsne(feats[before], cfg.seed)
    xy_after = q.tsne(feats, cfg.seed) if (kind == 1).any() else np.full_like(xy_before, np.nan)
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


def _write_results(ev: Path, result: dict) -> None:
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


# --- background process --------------------------------------------------------------------------
def start_evaluation(run_dir: str | os.PathLike, eval_cfg: EvalConfig | None = None) -> None:
    """Launch ``python -m imbagan evaluate RUN_DIR`` in its own session; it writes RUN_DIR/eval/."""
    d = Path(run_dir).resolve()
    if not (d / "config.json").is_file():
        raise FileNotFoundError(f"{d} is not a run directory (no config.json).")
    if runs.read_status(d).get("state") in runs.ACTIVE:
        raise ValueError(f"Run {d.name} is still training (or evaluating); evaluate it when it has finished.")
    ev = d / "eval"
    if (ev / "status.json").exists() and runs.read_status(ev).get("state") in runs.ACTIVE:
        raise ValueError(f"Run {d.name} is already being evaluated.")
    ev.mkdir(exist_ok=True)
    (eval_cfg or EvalConfig()).save(ev / "config.json")
    pid = runs.launch_cli(["evaluate", str(d), "--config", str(ev / "config.json"), "--no-log-file"],
                          ev / "log.txt")
    # 'queued' is written with the child's pid, after it exists, so that a reader never meets a queued
    # evaluation without a live pid (read_status would call it dead); unless the child wrote first.
    st = runs.read_json(ev / "status.json", {}) or {}
    if st.get("pid") != pid:
        runs.write_json_atomic(ev / "status.json", {"state": "queued", "pid": pid, "progress": 0.0,
                                                    "phase": "queued", "heartbeat": time.time(), "error": None})


def stop_evaluation(run_dir: str | os.PathLike) -> None:
    """Ask a running evaluation to stop (SIGTERM); its status becomes 'stopped'."""
    st = runs.read_status(Path(run_dir) / "eval")
    if st.get("state") in runs.ACTIVE and st.get("pid"):
        try:
            os.kill(int(st["pid"]), signal.SIGTERM)
        except ProcessLookupError:
            pass


def worker_main(run_dir: Path, cfg: EvalConfig | None, log_file: bool = True) -> int:
    """The evaluation process: SIGTERM stops it cleanly; errors end up in eval/status.json."""
    def on_term(signum, frame):
        raise EvaluationStopped()

    signal.signal(signal.SIGTERM, on_term)
    try:
        evaluate_run(run_dir, cfg, log=print, log_file=log_file)
        return 0
    except (EvaluationStopped, KeyboardInterrupt):
        return 0
    except Exception:
        traceback.print_exc()
        return 1


# --- command line ------------------------------------------------------------------------------
def add_arguments(p) -> None:
    """The `evaluate` sub-command's flags: one per EvalConfig field, plus --config and --background."""
    defaults = EvalConfig()
    for f in dataclasses.fields(EvalConfig):
        flag, default = "--" + f.name.replace("_", "-"), getattr(defaults, f.name)
        if isinstance(default, tuple):
            p.add_argument(flag, nargs="+", type=type(default[0]), default=None,
                           help=f"{FIELD_HELP.get(f.name, '')} (default: {' '.join(map(str, default))})")
        else:
            p.add_argument(flag, type=type(default), default=None,
                           help=f"{FIELD_HELP.get(f.name, '')} (default: {default})")
    p.add_argument("--config", default=None, help="an eval config.json to start from (flags override it)")
    p.add_argument("--background", action="store_true", help="launch the evaluation in the background and return")
    # start_evaluation sends stdout to eval/log.txt already
    p.add_argument("--no-log-file", action="store_true", help=argparse.SUPPRESS)


def config_from_args(a) -> EvalConfig:
    base = EvalConfig.load(Path(a.config)) if getattr(a, "config", None) else EvalConfig()
    kw = {f.name: getattr(a, f.name) for f in dataclasses.fields(EvalConfig)
          if getattr(a, f.name, None) is not None}
    return base.replace(**{k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()})
