"""Evaluation throughput: today's one-classifier-at-a-time path against the batched one, in one process.

    python bench/eval_speed.py --data-root /work/shared/datasets            # digits and MNIST 5 vs 6
    python bench/eval_speed.py --quick                                      # 2 epochs instead of 15
    python bench/eval_speed.py --datasets mnist56 --budget-study 150 350 700 1395   # accuracy vs steps

For each dataset it builds the evaluation's training sets (imbalanced, oversample, mirror, smote,
class_weight, full) with imbagan.trainsets, then for every classifier seed trains them

- old: ``classifiers.fit`` for each condition, one after another, with today's budget
  (``epochs`` passes over the balanced set, no cap), float32, as the evaluation does today;
- new: one ``classifiers.fit_many`` pass over all conditions, with the capped budget
  (``budget_steps(..., cap=STEP_CAP)``) and ``precision="auto"``.

Old and new alternate seed by seed, so a change in the machine's load hits both. It prints each
condition's test ACSA (mean ± std over the seeds) for both paths, their difference against twice its
standard error, and the wall-time (and process CPU-time) ratio old / new, with the machine and its
load average. ``--budget-study`` instead trains the imbalanced set (and ``--study-conditions``) with
fit_many at each given number of steps: the measurement behind the step cap.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imbagan import classifiers as clf  # noqa: E402
from imbagan import trainsets as ts  # noqa: E402
from imbagan.batches import resolve_device  # noqa: E402
from imbagan.config import TrainConfig  # noqa: E402
from imbagan.splits import full_set, load_split  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import load_average, machine as machine_line  # noqa: E402

CONDITIONS = ("imbalanced", "oversample", "mirror", "smote", "class_weight", "full")
SCENARIOS = {
    # the app's default scenario (TrainConfig's defaults: digits, 95% of the 3s and 8s dropped)
    "digits": dict(),
    # MNIST 5 (minority) vs 6 at IR 100, as in issue 9's 25-minute evaluation
    "mnist56": dict(dataset="mnist", imbalance="binary", ir=100.0, minority=(5,), majority=6),
}


def machine(device: str = "cpu") -> str:
    """bench/machine.py's line for ``device`` (the GPU first when it runs on one), with what a speed figure also
    depends on: the load, torch's version and threads, and whether the CPU has native bf16."""
    return (f"{machine_line(str(device))}; load average {load_average()}; torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads; CPU bf16: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")


def acsa(model, x_test: torch.Tensor, y_test: np.ndarray, minority: int) -> tuple[float, float]:
    pred = clf.predict(model, x_test).cpu().numpy()
    recalls = [float((pred[y_test == c] == c).mean()) for c in np.unique(y_test)]
    return float(np.mean(recalls)), recalls[minority]


def condition_sets(name: str, train, full, k: int, seed: int, device):
    """(x, y, class weight or None) on the device, built as the evaluation builds them."""
    w = None
    if name == "imbalanced":
        x, y = train.x, train.y
    elif name == "oversample":
        x, y = ts.oversample(train.x, train.y, seed)
    elif name == "mirror":
        x, y = ts.mirror(train.x, train.y, seed)
    elif name == "smote":
        x, y, _ = ts.smote(train.x, train.y, seed)
    elif name == "class_weight":
        x, y = train.x, train.y
        w = torch.tensor(ts.class_weights(train.y, k), dtype=torch.float32, device=device)
    elif name == "full":
        x, y = full.x, full.y
    else:
        raise ValueError(name)
    return (torch.from_numpy(np.ascontiguousarray(x)).to(device), torch.from_numpy(y.astype(np.int64)).to(device), w)


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def mean_std(v: list[float]) -> tuple[float, float]:
    return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0


def scenario(name: str, a, device):
    cfg = TrainConfig(**SCENARIOS[name], data_root=a.data_root, device=str(device))
    train, kept = load_split(cfg, "train")
    test, _ = load_split(cfg, "test")
    full = full_set(cfg, kept)
    k = len(train.classes)
    counts = np.bincount(train.y, minlength=k).tolist()
    return train, test, full, k, counts


def compare(name: str, a, device) -> None:
    train, test, full, k, counts = scenario(name, a, device)
    minority = int(np.argmin(counts))
    x_test = torch.from_numpy(test.x).to(device)
    old_steps = clf.budget_steps(counts, a.batch_size, a.epochs)
    new_steps = clf.budget_steps(counts, a.batch_size, a.epochs, a.cap)
    print(f"\n## {name}: {k} classes, train counts {counts}, test {len(test.y)}; {len(a.seeds)} classifier seeds")
    print(f"old: classifiers.fit, {old_steps} steps, float32, one condition after another")
    print(f"new: classifiers.fit_many, {new_steps} steps (cap {a.cap}), precision {a.precision}, "
          f"{len(CONDITIONS)} conditions per pass")
    res = {p: {c: [] for c in CONDITIONS} for p in ("old", "new")}
    mino = {p: {c: [] for c in CONDITIONS} for p in ("old", "new")}
    wall = {"old": 0.0, "new": 0.0}
    cpu = {"old": 0.0, "new": 0.0}
    kw = dict(arch=a.arch, width=a.width, batch_size=a.batch_size, lr=a.lr)
    for seed in a.seeds:
        sets = {c: condition_sets(c, train, full, k, 0, device) for c in CONDITIONS}  # data seed 0: sets fixed
        for path in ("old", "new"):
            sync(device)
            t, tc = time.perf_counter(), time.process_time()
            if path == "old":
                models = [clf.fit(x, y, k, steps=old_steps, seed=seed, class_weight=w, **kw)
                          for x, y, w in sets.values()]
            else:
                jobs = [clf.Job(x, y, seed, class_weight=w, name=c) for c, (x, y, w) in sets.items()]
                models = clf.fit_many(jobs, k, steps=new_steps, precision=a.precision, **kw)
            sync(device)
            wall[path] += time.perf_counter() - t
            cpu[path] += time.process_time() - tc
            for c, m in zip(CONDITIONS, models):
                s, r = acsa(m, x_test, test.y, minority)
                res[path][c].append(s)
                mino[path][c].append(r)
        print(f"  seed {seed}: old {wall['old']:.1f} s, new {wall['new']:.1f} s so far "
              f"(load {os.getloadavg()[0]:.2f})", flush=True)
    n = len(a.seeds)
    print("\n| condition | ACSA old (mean ± std) | ACSA new (mean ± std) | new − old | 2 SE | agree | "
          "minority recall old | minority recall new |")
    print("|---|---|---|---|---|---|---|---|")
    for c in CONDITIONS:
        (mo, so), (mn, sn) = mean_std(res["old"][c]), mean_std(res["new"][c])
        se2 = 2 * math.sqrt(so ** 2 / n + sn ** 2 / n)
        ro, rn = mean_std(mino["old"][c]), mean_std(mino["new"][c])
        print(f"| {c} | {mo:.4f} ± {so:.4f} | {mn:.4f} ± {sn:.4f} | {mn - mo:+.4f} | {se2:.4f} | "
              f"{'yes' if abs(mn - mo) <= max(se2, 1e-9) else 'NO'} | {ro[0]:.3f} ± {ro[1]:.3f} | "
              f"{rn[0]:.3f} ± {rn[1]:.3f} |")
    print(f"\nwall time: old {wall['old']:.1f} s, new {wall['new']:.1f} s, ratio old/new {wall['old'] / wall['new']:.2f}x"
          f"  (process CPU time: old {cpu['old']:.1f} s, new {cpu['new']:.1f} s, ratio "
          f"{cpu['old'] / max(cpu['new'], 1e-9):.2f}x)")
    print(f"per classifier: old {wall['old'] / n / len(CONDITIONS):.2f} s, new {wall['new'] / n / len(CONDITIONS):.2f} s;"
          f" per classifier-step: old {1e3 * wall['old'] / n / len(CONDITIONS) / old_steps:.1f} ms, "
          f"new {1e3 * wall['new'] / n / len(CONDITIONS) / new_steps:.1f} ms")
    print(f"machine after: {machine(device)}")


def validation_scenario(name: str, a, device, per_class: int, seed: int = 0):
    """The scenario rebuilt on the training split minus a balanced validation split carved from it.

    ``per_class`` images of each of the run's classes are held out of the dataset's training split
    (seeded); the imbalance profile is then applied to the rest, and the "full" set is the rest. The
    test split is not loaded: the budget is chosen on training data only.
    """
    from imbagan import data as datasets
    from imbagan import imbalance as imb

    cfg = TrainConfig(**SCENARIOS[name], data_root=a.data_root, device=str(device))
    base = datasets.load(cfg.dataset, "train", root=cfg.data_root, image_size=cfg.image_size, channels=cfg.channels)
    _, kept = imb.select(cfg.imbalance_spec(), base.y, cfg.seed, channels=base.shape[0])
    rng = np.random.default_rng(seed)
    val_idx = np.concatenate([rng.choice(np.flatnonzero(base.y == c), per_class, replace=False) for c in kept])
    rest = np.setdiff1d(np.arange(len(base.y)), val_idx)
    idx, kept2 = imb.select(cfg.imbalance_spec(), base.y[rest], cfg.seed, channels=base.shape[0])
    assert tuple(kept2) == tuple(kept)
    sel = rest[idx]
    in_kept = rest[np.isin(base.y[rest], kept)]
    mk = lambda ix: (base.x[ix], imb.remap(base.y[ix], kept))  # noqa: E731
    train, full, val = mk(sel), mk(in_kept), mk(val_idx)
    return train, full, val, len(kept)


def budget_study(name: str, a, device) -> None:
    """Validation ACSA and minority recall against the classifier's budget, with fit_many (cosine schedule
    per budget). With ``--validation N`` (the default) every number comes from N images per class carved
    out of the training split: the test split is never read, so the budget chosen from it is not selected
    on the test split."""
    from types import SimpleNamespace

    if a.validation:
        tr, fu, va, k = validation_scenario(name, a, device, a.validation)
        train, full = SimpleNamespace(x=tr[0], y=tr[1]), SimpleNamespace(x=fu[0], y=fu[1])
        x_eval, y_eval, where = torch.from_numpy(va[0]).to(device), va[1], f"validation ({a.validation} a class)"
    else:
        train, test, full, k, _ = scenario(name, a, device)
        x_eval, y_eval, where = torch.from_numpy(test.x).to(device), test.y, "TEST split (not for choosing)"
    counts = np.bincount(train.y, minlength=k).tolist()
    minority = int(np.argmin(counts))
    conds = a.study_conditions
    per_epoch = clf.budget_steps(counts, a.batch_size, 1)
    print(f"\n## budget study, {name}: train counts {counts}; {per_epoch} steps per balanced epoch; "
          f"scored on the {where}; seeds {a.seeds}; {machine(device)}")
    print("| condition | steps | epochs | ACSA (mean ± std) | minority recall | seconds |")
    print("|---|---|---|---|---|---|")
    sets = {c: condition_sets("imbalanced" if c == "la_loss" else c, train, full, k, 0, device) for c in conds}
    for steps in a.budget_study:
        t = time.perf_counter()
        jobs = [clf.Job(x, y, s, class_weight=w, name=c,
                        logit_offset=clf.log_prior(y, k) if c == "la_loss" else None)
                for c, (x, y, w) in sets.items() for s in a.seeds]
        models = clf.fit_many(jobs, k, arch=a.arch, width=a.width, steps=steps, batch_size=a.batch_size, lr=a.lr,
                              precision=a.precision)
        dt = time.perf_counter() - t
        for i, c in enumerate(conds):
            ms = models[i * len(a.seeds):(i + 1) * len(a.seeds)]
            r = [acsa(m, x_eval, y_eval, minority) for m in ms]
            s, sd = mean_std([v[0] for v in r])
            mr, mrs = mean_std([v[1] for v in r])
            print(f"| {c} | {steps} | {steps / per_epoch:.1f} | {s:.4f} ± {sd:.4f} | {mr:.3f} ± {mrs:.3f} | {dt:.0f} |",
                  flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    p.add_argument("--data-root", default=os.environ.get("IMBAGAN_DATA"))
    p.add_argument("--quick", action="store_true", help="2 epochs instead of 15 (the cap rarely bites then)")
    p.add_argument("--epochs", type=int, default=None, help="the evaluation's budget in balanced epochs (default 15)")
    p.add_argument("--cap", type=int, default=clf.STEP_CAP, help="the new path's step cap")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--arch", default="cnn", choices=list(clf.BUILDERS))
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=int(os.environ.get("IMBAGAN_THREADS", "0")) or None)
    p.add_argument("--budget-study", nargs="+", type=int, default=None, metavar="STEPS")
    p.add_argument("--study-conditions", nargs="+", default=["imbalanced"], choices=[*CONDITIONS, "la_loss"])
    p.add_argument("--validation", type=int, default=30, metavar="N",
                   help="budget study: score on N images a class carved from the training split (0: the test "
                        "split, for illustration only; never choose a budget from it)")
    a = p.parse_args()
    a.epochs = a.epochs or (2 if a.quick else 15)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    print(f"machine: {machine(device)}")
    for name in a.datasets:
        if a.budget_study:
            budget_study(name, a, device)
        else:
            compare(name, a, device)


if __name__ == "__main__":
    main()
