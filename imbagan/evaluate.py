"""Did balancing help, for which classes, and are the generated images any good?

For a trained run this trains the same classifier on several versions of its training set and tests
each on the run's untouched test split (BAGAN §5.2, AGGAN §5.2):

    imbalanced     the imbalanced training set as is (AGGAN's "CN")
    oversample     random oversampling to the largest class (imblearn RandomOverSampler; AGGAN "Os+CN")
    mirror         horizontally mirrored copies of minority images (BAGAN §5.2's "mirror")
    smote          SMOTE on flattened pixels (imblearn)
    class_weight   the imbalanced set with a "balanced" class-weighted loss (scikit-learn's weights)
    logit_adjust   the imbalanced classifier with post-hoc logit adjustment (Menon et al. 2021, tau = 1):
                   test logits minus log of the training prior; costs no training
    la_loss        the logit-adjusted loss (Menon et al. 2021, tau = 1; equal to balanced softmax,
                   Ren et al. 2020): cross-entropy of logits + log prior
    drw            deferred re-weighting (Cao et al. 2019): plain cross-entropy for the first 80% of
                   the steps, then the class-weighted loss
    augment        the imbalanced set with standard augmentation: random shifts of 1/8 of the side, and
                   horizontal flips only where a flipped image keeps its class (never digits)
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
import json
import math
import os
import re
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from imbagan import budgets, cores, runs, verdict
from imbagan.config import documented

CONDITIONS = ("imbalanced", "oversample", "mirror", "smote", "class_weight", "logit_adjust", "la_loss", "drw",
              "augment", "gan", "full")
# One line per condition, for the Evaluate page and --help.
DESCRIPTIONS = {
    "imbalanced": "The imbalanced training set as it is: the untreated classifier (AGGAN's CN).",
    "oversample": "Random oversampling of every class up to the largest (AGGAN's Os+CN).",
    "mirror": "Horizontally mirrored copies of minority images (BAGAN §5.2's baseline).",
    "smote": "SMOTE: new minority images interpolated between neighbours, on raw pixels.",
    "class_weight": "The imbalanced set with a class-weighted loss (weights n / (k · n_c)).",
    "logit_adjust": "The imbalanced classifier with its logits shifted by − log prior at test time "
                    "(Menon et al. 2021): the cheapest fix, no training at all.",
    "la_loss": "The logit-adjusted loss (Menon et al. 2021; at tau = 1 balanced softmax, Ren et al. 2020).",
    "drw": "Deferred re-weighting (Cao et al. 2019): plain loss first, class weights for the last 20% of steps.",
    "augment": "The imbalanced set with random shifts (and flips where a flip keeps the class): what any "
               "augmentation adds, to tell apart from what the GAN adds.",
    "gan": "The imbalanced set topped up with the run's generated images to the largest class (BAGAN §5.2).",
    "full": "The dataset without imbalance: the ceiling, not a fix anyone has.",
}
# Fixed in advance, never chosen on the test split (issue: an honest verdict).
LA_TAU = 1.0  # logit adjustment's temperature, Menon et al. 2021's default
DRW_PLAIN = 0.8  # deferred re-weighting: the fraction of steps with plain cross-entropy (Cao et al. 2019: 160 of 200 epochs)
STEP_CAP = budgets.STEP_CAP  # classifier steps at most (flat test accuracy past ~350 on MNIST 5 vs 6)
# conditions=() (automatic) on a CPU: what the verdict needs (the untreated classifier, the cheapest fixes, the
# GAN, the ceiling) and what fits the default path's minute; on a GPU every condition (CONDITIONS).
CPU_CONDITIONS = ("imbalanced", "logit_adjust", "la_loss", "gan", "full")
CPU_REPEATS = 2  # repeats=0 (auto): classifier seeds per condition on a CPU; 3 on a GPU
CLASSIFIERS = ("cnn", "resnet18")  # keys of imbagan.classifiers.BUILDERS (kept here so the config imports light)
KINDS = ("train (real)", "generated", "test")  # tsne.npz's kind codes 0, 1, 2


@dataclass(frozen=True)
class EvalConfig:
    classifier: str = documented("cnn", "cnn (small, fast) | resnet18 (BAGAN §5.1's, stem adapted to small images)")
    width: int = documented(32, "cnn: channels of its first block (then x2, x4); resnet18 ignores it")
    epochs: int = documented(15, "budget in epochs of the balanced set; every condition gets the same number of steps")
    batch_size: int = documented(128, "images per classifier step")
    lr: float = documented(1e-3, "AdamW learning rate, cosine-decayed to 0 over the budget")
    seed: int = documented(0, "initial weights, batch order, resampling, generated noise, subsampling")
    conditions: tuple[str, ...] = documented((), "training sets to compare (see the module docstring); empty: "
                                             "all of them on a GPU, on a CPU " + ", ".join(CPU_CONDITIONS))
    blend: tuple[float, ...] = documented((1.0,), "gan: fractions of each class's gap filled; 1.0 -> \"gan\", 0.5 -> \"gan_0.5\"")
    repeats: int = documented(0, "classifier seeds per condition, for the verdict's spread; 0: 3 on a GPU, 2 on a CPU")
    tsne_points: int = documented(3000, "points in the t-SNE plots (0: no t-SNE)")
    quality_images: int = documented(500, "generated images per class for class accuracy and domain FID (0: no quality)")
    ssim_pairs: int = documented(200, "per class: image couples for SSIM diversity, and queries for nearest-neighbour SSIM")
    device: str = documented("auto", "auto (cuda, then mps, then cpu) | cuda | cuda:N | mps | cpu")

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
        if unknown or len(set(self.conditions)) != len(self.conditions):
            bad(f"conditions must be distinct names among {', '.join(CONDITIONS)} (got {self.conditions}).")
        if not self.blend or any(not 0 < r <= 1 for r in self.blend) or len(set(self.blend)) != len(self.blend):
            bad(f"blend ratios must be distinct fractions in (0, 1] (got {self.blend}).")
        if self.repeats < 0 or self.repeats > 20:
            bad(f"repeats must be between 0 (automatic) and 20 (got {self.repeats}).")
        if self.tsne_points != 0 and self.tsne_points < 10:
            bad(f"tsne_points must be 0 (no t-SNE) or at least 10 (got {self.tsne_points}).")
        if self.quality_images < 0 or self.ssim_pairs < 0:
            bad("quality_images and ssim_pairs cannot be negative.")
        if not (self.device in ("auto", "cpu", "mps", "cuda") or re.fullmatch(r"cuda:\d+", self.device or "")):
            bad(f"device must be auto, cpu, mps, cuda or cuda:N (got {self.device!r}).")

    def conditions_on(self, device=None) -> tuple[str, ...]:
        """The conditions asked for, or the automatic choice for ``device`` (a torch.device, a string or None: CPU)."""
        gpu = getattr(device, "type", str(device or "cpu")).startswith("cuda")
        return self.conditions or (CONDITIONS if gpu else CPU_CONDITIONS)

    def condition_names(self, device=None) -> list[str]:
        """The conditions in report order, with one gan entry per blend ratio."""
        out = []
        for c in self.conditions_on(device):
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


# One line of help per field, for --help and the page's tooltips.
FIELD_HELP = {f.name: f.metadata["help"] for f in dataclasses.fields(EvalConfig)}


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
        stopped = isinstance(e, (EvaluationStopped, KeyboardInterrupt))
        status.update(state="stopped" if stopped else "failed", phase="stopped" if stopped else "failed",
                      error=None if stopped else f"{type(e).__name__}: {e}", finished=time.time())
        say("stopped" if stopped else f"failed: {type(e).__name__}: {e}")
        raise
    finally:
        status.close()


# --- the training sets compared: {name: builder} ------------------------------------------------
@dataclass
class TrainSet:
    """One condition's training data (uint8 images, labels 0..k-1) and how its loss treats classes."""

    x: np.ndarray
    y: np.ndarray
    class_weight: np.ndarray | None = None  # per-class loss weights, or None for plain cross-entropy
    note: str = ""
    logit_adjusted: bool = False  # train with CE(logits + tau * log prior): the logit-adjusted loss
    plain_fraction: float = 0.0  # DRW: the class weights apply only after this fraction of the steps
    augment: bool = False  # random shifts (and flips where the dataset allows) on every batch


@dataclass
class Context:
    """What the builders and steps of one evaluation share."""

    run_dir: Path
    run_cfg: Any  # the run's TrainConfig
    cfg: EvalConfig
    device: Any
    train: Any  # ImageSet: the run's imbalanced training split
    test: Any  # ImageSet: the untouched test split
    full: Any  # ImageSet: the run's dataset without imbalance
    pool: dict[int, np.ndarray]  # generated images per modelled class
    steps: int  # classifier steps per condition, declared before anything is trained

    @property
    def names(self) -> list[str]:
        return list(self.train.classes)

    @property
    def counts(self) -> list[int]:
        return np.bincount(self.train.y, minlength=len(self.train.classes)).tolist()


def _gan_set(ratio: float) -> Callable[[Context], TrainSet]:
    def build(c: Context) -> TrainSet:
        from imbagan import trainsets as ts

        x, y, n_gen = ts.gan_topup(c.train.x, c.train.y, c.pool, ratio)
        return TrainSet(x, y, note=f"{n_gen} generated images")
    return build


def _from(fn_name: str) -> Callable[[Context], TrainSet]:
    """A builder from an imbagan.trainsets resampler (x, y, seed) -> (x, y[, note])."""
    def build(c: Context) -> TrainSet:
        from imbagan import trainsets as ts

        out = getattr(ts, fn_name)(c.train.x, c.train.y, c.cfg.seed)
        return TrainSet(out[0], out[1], note=out[2] if len(out) > 2 else "")
    return build


def _class_weight(c: Context) -> TrainSet:
    from imbagan import trainsets as ts

    return TrainSet(c.train.x, c.train.y, class_weight=ts.class_weights(c.train.y, len(c.names)))


def _drw(c: Context) -> TrainSet:
    from imbagan import trainsets as ts

    return TrainSet(c.train.x, c.train.y, class_weight=ts.class_weights(c.train.y, len(c.names)),
                    plain_fraction=DRW_PLAIN, note=f"class weights from step {int(DRW_PLAIN * c.steps)}")


TRAINING_SETS: dict[str, Callable[[Context], TrainSet]] = {
    "imbalanced": lambda c: TrainSet(c.train.x, c.train.y),
    "oversample": _from("oversample"),
    "mirror": _from("mirror"),
    "smote": _from("smote"),
    "class_weight": _class_weight,
    "la_loss": lambda c: TrainSet(c.train.x, c.train.y, logit_adjusted=True, note=f"tau = {LA_TAU:g}"),
    "drw": _drw,
    "augment": lambda c: TrainSet(c.train.x, c.train.y, augment=True, note="shifts" + (
        " and flips" if c.run_cfg.dataset in __import__("imbagan.trainsets").trainsets.HFLIP_DATASETS else "")),
    "full": lambda c: TrainSet(c.full.x, c.full.y, note="the run's dataset without imbalance"),
}
# Conditions that train nothing: (the condition whose classifiers they reuse, how they change its logits).
POST_HOC = {"logit_adjust": "imbalanced"}


def adjust_logits(logits: np.ndarray, train_counts: list[int], tau: float = LA_TAU) -> np.ndarray:
    """Post-hoc logit adjustment (Menon et al. 2021, eq. 9): logits − tau · log(training prior)."""
    counts = np.maximum(np.asarray(train_counts, dtype=np.float64), 1.0)
    return logits - tau * np.log(counts / counts.sum())


def training_set(name: str, c: Context) -> TrainSet:
    """The named condition's set: a TRAINING_SETS entry, or gan / gan_<ratio> (the GAN top-up)."""
    if name in TRAINING_SETS:
        return TRAINING_SETS[name](c)
    return _gan_set(1.0 if name == "gan" else float(name.split("_", 1)[1]))(c)


SUMMARY = ("accuracy", "acsa", "gmean", "macro_f1")  # the per-seed numbers a condition keeps


def _pm(sp: dict) -> str:
    return f"{sp['mean']:.3f} ± {sp['std']:.3f}" if sp.get("mean") is not None else "—"


# --- the steps ---------------------------------------------------------------------------------
def budget_steps(counts: list[int], cfg: EvalConfig) -> int:
    """One budget for all conditions, fixed before any training: `epochs` passes over a set balanced at
    the largest class, at most STEP_CAP steps."""
    return budgets.budget_steps(counts, cfg.batch_size, cfg.epochs, STEP_CAP)


def repeats_for(cfg: EvalConfig, device) -> int:
    if cfg.repeats:
        return cfg.repeats
    return 3 if getattr(device, "type", str(device)) == "cuda" else CPU_REPEATS


def step_load(d: Path, cfg: EvalConfig, say) -> Context:
    from imbagan import splits
    from imbagan.batches import resolve_device
    from imbagan.config import TrainConfig

    run_cfg = TrainConfig.load(d / "config.json")
    device = resolve_device(cfg.device)
    train, kept = splits.load_split(run_cfg, "train")
    test, _ = splits.load_split(run_cfg, "test")
    full = splits.full_set(run_cfg, kept)
    counts = np.bincount(train.y, minlength=len(train.classes)).tolist()
    return Context(d, run_cfg, cfg, device, train, test, full, {}, budget_steps(counts, cfg))


def step_pool(c: Context, say) -> str | None:
    """Generated images for the gan conditions, quality and t-SNE; returns why there are none, if so."""
    from imbagan.generate import generate_pool

    c.pool, no_gen = generate_pool(c.run_dir, c.counts, c.cfg.quality_images, c.cfg.seed, c.device, say)
    return no_gen


def step_fit(c: Context, sets: dict[str, TrainSet], seeds: dict[str, list[int]],
             on_progress: Callable[[str, float, Any], None]) -> dict[str, list]:
    """Classifiers for every (training set, seed), trained together in one batched pass
    (``classifiers.fit_many``): each from the initial weights of its seed, for the same number of steps."""
    import torch

    from imbagan import classifiers as clf
    from imbagan import trainsets as ts

    k = len(c.names)
    jobs, keys = [], []
    for name, s in sets.items():
        x = torch.from_numpy(np.ascontiguousarray(s.x)).to(c.device)
        y = torch.from_numpy(s.y.astype(np.int64)).to(c.device)
        w = None if s.class_weight is None else torch.tensor(s.class_weight, dtype=torch.float32)
        offset = clf.log_prior(y, k, LA_TAU) if s.logit_adjusted else None
        aug = ts.augmentation_for(c.run_cfg.dataset, int(s.x.shape[-1])) if s.augment else None
        for seed in seeds[name]:
            jobs.append(clf.Job(x, y, seed, class_weight=w, logit_offset=offset,
                                plain_steps=int(s.plain_fraction * c.steps), augment=aug, name=name))
            keys.append(name)

    def report(step: int, total: int, losses) -> None:
        on_progress(f"{len(jobs)} classifiers: step {step}/{total}", step / total, losses.mean())

    models = clf.fit_many(jobs, k, arch=c.cfg.classifier, width=c.cfg.width, steps=c.steps,
                          batch_size=c.cfg.batch_size, lr=c.cfg.lr, report_every=max(1, c.steps // 20),
                          on_report=report)
    out: dict[str, list] = {}
    for name, m in zip(keys, models):
        out.setdefault(name, []).append(m)
    return out


def test_logits(c: Context, model) -> np.ndarray:
    import torch

    from imbagan import classifiers as clf

    return clf.logits(model, torch.from_numpy(c.test.x).to(c.device)).cpu().numpy()


def step_test(c: Context, logits: np.ndarray, s: TrainSet) -> dict:
    """Per-class and summary metrics of one classifier's test logits on the untouched test split."""
    from imbagan import quality as q
    from imbagan.imbalance import minority_classes

    m = q.classification_metrics(c.test.y, logits.argmax(1), c.names, int(np.argmin(c.counts)))
    recall = {r["class"]: r["recall"] for r in m["per_class"]}
    m["minorities"] = [{"class": c.names[i], "recall": recall.get(c.names[i])} for i in minority_classes(c.counts)]
    m.update(train_size=int(len(s.y)), train_counts=np.bincount(s.y, minlength=len(c.names)).tolist(), note=s.note)
    return m


def step_quality(c: Context, reference) -> dict:
    import torch

    from imbagan import classifiers as clf
    from imbagan import quality as q

    def predict(x: np.ndarray) -> np.ndarray:
        return clf.predict(reference, torch.from_numpy(x).to(c.device)).cpu().numpy()

    def embed(x: np.ndarray) -> np.ndarray:
        return clf.features(reference, torch.from_numpy(x).to(c.device)).cpu().numpy()

    # FID's real side: the test split, held out from the reference classifier and the GAN.
    return q.generated_quality(c.pool, c.train, c.full, predict, embed, c.cfg.quality_images, c.cfg.ssim_pairs,
                               c.cfg.seed, c.device, heldout=c.test, heldout_name="test split")


def step_tsne(c: Context, reference, ev: Path) -> dict:
    import torch

    from imbagan import classifiers as clf

    def embed(x: np.ndarray) -> np.ndarray:
        return clf.features(reference, torch.from_numpy(x).to(c.device)).cpu().numpy()

    gap = {k: max(c.counts) - c.counts[k] for k in c.pool}  # the "gan" condition's generated images
    gen_x = np.concatenate([c.pool[k][:gap[k]] for k in c.pool])
    gen_y = np.concatenate([np.full(gap[k], k, dtype=np.int64) for k in c.pool])
    return _tsne(ev, embed, [(c.train.x, c.train.y), (gen_x, gen_y), (c.test.x, c.test.y)], c.names, c.cfg)


def wait_for_training(c: Context, status: runs.StatusWriter, say, poll_s: float = 1.0) -> str:
    """Block while the run's GAN still trains (an evaluation launched alongside it); returns its final state.

    The job slot is given back for the wait and taken again after it, so the training is never queued
    behind the evaluation that waits for it."""
    st = runs.read_status(c.run_dir)
    if st.get("state") not in runs.ACTIVE:
        return str(st.get("state"))
    had_slot = runs.release_slot()
    say("the baselines are trained; waiting for the GAN to finish training")
    while (st := runs.read_status(c.run_dir)).get("state") in runs.ACTIVE:
        step, total = st.get("step") or 0, st.get("total")
        status.update(phase="waiting for the GAN to finish training"
                      + (f" (step {step:,} of {total:,})" if total else ""), eta_s=None,
                      waiting_for_training=True)  # the training takes our cores meanwhile (train.train)
        time.sleep(poll_s)
    status.update(waiting_for_training=False)
    if had_slot:
        runs.wait_for_slot(c.run_dir / "eval" / "status.json", c.run_dir.parent / runs.SLOTS_DIR)
        status.update(state="running")
    say(f"the run's training ended: {st.get('state')}")
    return str(st.get("state"))


def _evaluate(d: Path, ev: Path, cfg: EvalConfig, status: runs.StatusWriter, say) -> dict:
    from imbagan.imbalance import minority_classes

    t_all, t_wall = time.perf_counter(), time.time()
    alongside = runs.read_status(d).get("state") in runs.ACTIVE  # launched with the training (runs.start)
    # Half the cores while the GAN trains beside us; while we wait for it, it takes ours (train.train), and once
    # it has ended we take every core back (below). Between those events the count follows the free cores
    # (cores.py): threads that outnumber the free cores are far slower than fewer threads (they spin-wait for
    # descheduled peers: 4x slower per classifier measured on 2 cores beside an unrelated busy process).
    threads = cores.ThreadPolicy(start=cores.sharing_start(sharing=alongside))
    timing_threads = threads.threads
    c = step_load(d, cfg, say)
    todo = cfg.condition_names(c.device)
    say(f"evaluating {d.name}: {c.run_cfg.dataset}, {len(c.names)} classes, train counts {c.counts}, test "
        f"{len(c.test)} images; {cfg.classifier} for {c.steps} steps per condition on {c.device}; "
        f"conditions {', '.join(todo)}" + ("; the GAN is still training: the baselines go first" if alongside else ""))
    timing: dict[str, Any] = {"device": str(c.device), "steps_per_condition": c.steps, "conditions": {},
                              "alongside_training": alongside, "threads": timing_threads}
    result: dict[str, Any] = {
        "run": {"id": d.name, "dataset": c.run_cfg.dataset, "method": c.run_cfg.method,
                "imbalance": c.run_cfg.imbalance, "classes": c.names, "train_counts": c.counts,
                "test_counts": np.bincount(c.test.y, minlength=len(c.names)).tolist(),
                "minority": int(np.argmin(c.counts)), "minority_classes": minority_classes(c.counts)},
        "conditions": {}, "skipped": {}, "quality": None, "tsne": None, "timing": timing, "config": cfg.to_dict()}
    n_rep = repeats_for(cfg, c.device)
    result["repeats"] = {"n": n_rep, "seeds": [cfg.seed + r for r in range(n_rep)],
                         "note": "each condition is trained with these classifier seeds; the imbalanced set, the "
                                 "generated images and the test split stay the same"}
    # 1. What needs no generated image, trained first (while the GAN may still be training).
    sets: dict[str, TrainSet] = {}
    for name in todo:
        if name in POST_HOC or verdict.is_gan(name):
            continue
        status.update(phase=f"{name}: building the training set")
        sets[name] = training_set(name, c)
    for name, source in POST_HOC.items():
        if name in todo and source not in sets:
            sets[source] = training_set(source, c)  # trained for the post-hoc condition, not reported
    seeds = {name: [cfg.seed + r for r in range(n_rep)] for name in sets}
    # AGGAN §5.3's and BAGAN §5.1's reference classifier, trained on the full real set (one seed).
    need_ref = cfg.quality_images > 0 or cfg.tsne_points > 0
    fit_sets = dict(sets)
    if need_ref and "full" not in fit_sets:
        fit_sets["reference"] = TRAINING_SETS["full"](c)
        seeds["reference"] = [cfg.seed]
    n_gan_jobs = sum(1 for name in todo if verdict.is_gan(name)) * n_rep
    n_jobs = sum(len(v) for v in seeds.values()) + n_gan_jobs
    t_fit, fit_s = time.perf_counter(), 0.0

    def progress_from(done: int, count: int):
        def progress(phase: str, frac: float, loss) -> None:
            # ETA from the classifiers' own pace; quality and t-SNE add roughly a quarter of it (progress 0.8 -> 1).
            spent = time.perf_counter() - t_fit
            overall = (done + frac * count) / n_jobs
            eta = spent * (1 - overall) / overall * 1.25 if overall > 0 else None
            status.update(progress=min(0.99, 0.8 * overall), phase=phase, loss=float(loss), eta_s=eta)  # one sync
            if not take_freed_cores() and (n := threads.check()) is not None:
                say(f"the free cores changed: {n} thread(s) from here")
        return progress

    sharing = alongside

    def take_freed_cores() -> bool:
        """Once the training beside us has ended, its cores are free: take every core (between two steps)."""
        nonlocal sharing
        if sharing and runs.read_status(d).get("state") not in runs.ACTIVE:
            sharing = False
            threads.settle()  # its cores are free unless another process holds one: half a second to see
            timing["training_ended_at_s"] = round(time.perf_counter() - t_all, 1)
            return True
        return False

    models: dict[str, list] = {}
    if fit_sets:
        status.update(phase=f"training {sum(len(v) for v in seeds.values())} classifiers together")
        models.update(step_fit(c, fit_sets, seeds, progress_from(0, n_jobs - n_gan_jobs)))
        fit_s += time.perf_counter() - t_fit
    # 2. The GAN's own conditions, once its training has ended.
    if alongside:
        t = time.perf_counter()
        result["run"]["training_state"] = wait_for_training(c, status, say)
        timing["waited_s"] = time.perf_counter() - t
        take_freed_cores()  # the training's cores are free now (if the baselines did not take them already)
        timing["threads_after_training"] = threads.threads
    t = time.perf_counter()
    no_gen = step_pool(c, say)
    timing["generate_s"] = time.perf_counter() - t
    result["run"].update(classes_modeled=sorted(c.pool), no_generator=no_gen)
    gan_sets: dict[str, TrainSet] = {}
    for name in todo:
        if not verdict.is_gan(name):
            continue
        if not c.pool:
            result["skipped"][name] = f"no generated images: {no_gen}"
            say(f"{name}: skipped ({no_gen})")
            continue
        status.update(phase=f"{name}: building the training set")
        gan_sets[name] = training_set(name, c)
    if not c.pool and need_ref:
        say(f"no image quality or t-SNE: {no_gen}")
    if gan_sets:
        t = time.perf_counter()
        gan_seeds = {name: [cfg.seed + r for r in range(n_rep)] for name in gan_sets}
        status.update(phase=f"training {sum(len(v) for v in gan_seeds.values())} classifiers together")
        models.update(step_fit(c, gan_sets, gan_seeds, progress_from(n_jobs - n_gan_jobs, n_gan_jobs)))
        fit_s += time.perf_counter() - t
        sets.update(gan_sets)
    timing["fit_s"] = fit_s
    per_seed: dict[str, list[dict]] = {}
    for name in todo:
        source = POST_HOC.get(name, name)
        if source not in models:
            continue
        s = sets[source]
        runs_ = []
        for model in models[source]:
            lg = test_logits(c, model)
            if name in POST_HOC:
                lg = adjust_logits(lg, c.counts)
            runs_.append(step_test(c, lg, s))
        m = dict(runs_[0])  # seed 0's per-class numbers and confusion matrix draw the charts
        if name in POST_HOC:
            m["note"] = f"the {source} classifier, logits − {LA_TAU:g} · log prior at test time"
        m["repeats"] = [{k: r[k] for k in SUMMARY} | {"minority_recall": r["minority"]["recall"]} for r in runs_]
        m["spread"] = {k: verdict.spread([r[k] for r in m["repeats"]]) for k in (*SUMMARY, "minority_recall")}
        result["conditions"][name] = m
        per_seed[name] = runs_
        sp = m["spread"]
        say(f"{name:>12}: {m['train_size']} images  ACSA {_pm(sp['acsa'])}  macro F1 {_pm(sp['macro_f1'])}  "
            f"minority recall {_pm(sp['minority_recall'])}" + (f"  [{m['note']}]" if m.get("note") else ""))
    result["verdict"] = {"rule": verdict.RULE, "best_baseline": verdict.best_baseline(verdict.collect(per_seed.items())),
                         "conditions": verdict.verdicts(verdict.collect(per_seed.items()))}
    for v in result["verdict"]["conditions"].values():
        say("verdict: " + v["text"])
    _write_results(ev, result)  # the classifiers' results for the page while quality and t-SNE run
    models = {k: v[0] for k, v in models.items()}
    reference = models.get("full", models.get("reference")) if need_ref and c.pool else None
    if reference is not None and cfg.quality_images > 0:
        status.update(phase="image quality", progress=0.8)
        t = time.perf_counter()
        result["quality"] = step_quality(c, reference)
        timing["quality_s"] = time.perf_counter() - t
        ov = result["quality"]["overall"]
        say(f"quality: class accuracy {ov['class_accuracy']:.3f}, SSIM gen {ov['ssim_gen']:.3f} vs real "
            f"{ov['ssim_real']:.3f}, NN-SSIM gen {ov['nn_ssim_gen']:.3f} vs real {ov['nn_ssim_real']:.3f}, "
            f"domain FID {ov['domain_fid']:.2f} on {ov['fid_images']} images a side vs the "
            f"{result['quality']['fid_real']} ({timing['quality_s']:.1f} s)")
    if reference is not None and cfg.tsne_points > 0:
        status.update(phase="t-SNE", progress=0.9)
        t = time.perf_counter()
        result["tsne"] = step_tsne(c, reference, ev)
        timing["tsne_s"] = time.perf_counter() - t
        say(f"t-SNE of {result['tsne']['points']} points: {'reused' if result['tsne']['cached'] else 'computed'} "
            f"in {timing['tsne_s']:.1f} s")
    timing["total_s"] = time.perf_counter() - t_all
    timing["thread_changes"] = [[round(t - t_wall, 1), n] for t, n in threads.changes]  # [seconds in, threads]
    timing["thread_source"] = threads.source
    _write_results(ev, result)
    say(f"evaluation done in {timing['total_s']:.1f} s")
    return result


def _tsne(ev: Path, embed: Callable[[np.ndarray], np.ndarray], sets: list[tuple[np.ndarray, np.ndarray]],
          names: list[str], cfg: EvalConfig) -> dict:
    """AGGAN §5.3 / Fig. 4a: reference features of real train (kind 0), generated (1) and test (2) images.

    One embedding of all three kinds: "after" is all of it, "before" the same coordinates with the rows of
    generated images NaN (so the two panels share their axes). A
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
    h = hashlib.sha256(f"openTSNE perplexity<=30 seed={cfg.seed} one map".encode())
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
    xy = q.tsne(feats, cfg.seed)
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
    """Launch the evaluation of a run in the background (see ``runs.start_evaluation``)."""
    runs.start_evaluation(run_dir, (eval_cfg or EvalConfig()).to_dict())


def default_conditions() -> tuple[str, ...]:
    """What the Evaluate page pre-selects: EvalConfig's automatic choice for this machine (no torch import)."""
    return EvalConfig().conditions_on("cuda" if runs.gpu_count() else "cpu")


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
    except Exception as e:
        if not log_file:  # launched in the background: stdout is eval/log.txt
            traceback.print_exc()
            return 1
        # In a terminal: one sentence; the traceback goes to eval/log.txt with the rest of the log.
        log = Path(run_dir) / "eval" / "log.txt"
        try:
            with open(log, "a") as f:
                traceback.print_exc(file=f)
            where = f" (the traceback is in {log})"
        except OSError:
            where = ""
        first = (str(e).strip().splitlines() or [""])[0]
        print(f"error: {type(e).__name__}: {first}{where}", file=sys.stderr)
        return 1


# --- command line ------------------------------------------------------------------------------
def add_arguments(p) -> None:
    """The `evaluate` sub-command's flags: one per EvalConfig field, plus --config and --background."""
    defaults = EvalConfig()
    for f in dataclasses.fields(EvalConfig):
        flag, default = "--" + f.name.replace("_", "-"), getattr(defaults, f.name)
        if isinstance(default, tuple):
            p.add_argument(flag, nargs="+", type=type(default[0]) if default else str, default=None,
                           help=f"{FIELD_HELP.get(f.name, '')} (default: {' '.join(map(str, default)) or 'automatic'})")
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
