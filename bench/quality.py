"""A quality table for every method: train each with its paper defaults, then judge its images.

    python bench/quality.py                                   # digits, the app's default scenario
    python bench/quality.py --dataset mnist --data-root ../shared/datasets --imbalance step --ir 100
    python bench/quality.py --dataset fashion_mnist --data-root ../shared/datasets --imbalance binary \\
        --ir 100 --minority 5 --majority 7 --options none diffaugment lecam
    python bench/quality.py --methods cagan --set cagan_d_norm=none --set cagan_reg=wgan-gp --out before.csv
    python bench/quality.py --budget full                     # the methods' full default budgets (GPU)

For each (option, method), option first, one run is trained in this process (the method's card's
paper defaults over TrainConfig's, the same settings the app and the CLI start from, then the
option's fields, then ``--set``), then evaluated with the imbalanced, gan and full training sets.
The imbalanced and full classifiers do not depend on the method, so they are trained once per
scenario, with the first row; every later row trains only its gan classifier (the same models:
``classifiers.fit_many`` gives each job the weights and batches ``fit`` would). It prints, and
writes after every row (``--out``, default bench/results/quality-<scenario>.csv):

    class accuracy of generated images under the reference classifier, per class and the minimum
    SSIM diversity of generated images against real images' (lower = more diverse)
    nearest-real SSIM of generated images against real-to-real (high = memorised)
    class-matched domain FID against held-out real images (the test split), overall and per class
    minority recall (the rarest class; every minority class in JSON) and ACSA: imbalanced -> gan -> full

``--options``: none (the defaults), diffaugment (DiffAugment with the paper's colour, translation and
cutout policy, Zhao et al. 2020) and lecam (the LeCam regulariser at λ = 0.3, Tseng et al. 2021's
limited-data setting); one row per (method, option), named in the ``options`` column.

The budget is stated in the output and the CSV (and each row's ``steps``): ``--budget measured`` (the
default) trains each method for its measured budget on the dataset's family (imbagan.budgets, from
bench/converge.py) and refuses a method without one; ``quick`` trains ``--steps`` adversarial steps at
width ``--width``; ``card`` trains ``--steps`` adversarial steps with the card's width and autoencoder budget
(DiffAugment and LeCam rows at the step where a method's curve was judged when it has no measured budget);
``full`` keeps TrainConfig's own steps and width. The Taxonomy page labels every row trained below its method's
measured budget "NOT converged".
``--from-runs DIR ...`` trains nothing: it judges runs that are already trained, one row each (e.g. the curves of
bench/converge.py, whose final checkpoints sit at up to twice the converged step), with the same evaluation; each
must be finished, of this scenario, and have no ``--set``; ``steps`` is the step of its checkpoint and ``train_s``
its training time over all its sessions (an extended run's included).
The machine and its load average are printed beside the numbers. The app's Taxonomy page shows the
newest table of each scenario under bench/results/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imbagan import budgets, catalog, conditions, evalconfig, evaluate, runs, train  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402
from imbagan.config import TrainConfig, starting_config  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# The options of issue 16 §3, as TrainConfig fields. λ = 0.3: LeCam's limited-data CIFAR runs (see the README).
OPTIONS: dict[str, dict] = {
    "none": {},
    "diffaugment": {"diffaugment": "color,translation,cutout"},
    "lecam": {"lecam_weight": 0.3},
}
BASELINES = ("imbalanced", "full")  # conditions that do not depend on the method: trained once per scenario


def parse_set(items: list[str]) -> dict:
    """``key=value`` pairs as TrainConfig fields or a method's settings (its card), each value read as the type
    of its default."""
    defaults = {**{f.name: getattr(TrainConfig, f.name) for f in dataclasses.fields(TrainConfig)
                   if f.name != "options"},
                **{name: spec["default"] for name, spec in catalog.setting_specs().items()}}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in defaults:
            raise SystemExit(f"--set wants key=value with a TrainConfig field or a method's setting as key "
                             f"(got {item!r}).")
        default = defaults[key]
        if isinstance(default, bool):
            out[key] = value.lower() in ("1", "true", "yes")
        elif isinstance(default, tuple):
            out[key] = tuple(int(v) for v in value.replace(",", " ").split())
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            out[key] = type(default)(value)
        else:
            out[key] = value
    return out


def scenario(a) -> tuple[str, str]:
    """(a label for the table, a slug for its file name)."""
    if a.imbalance == "binary":
        what, slug = f"{a.minority[0]} vs {a.majority}, ir {a.ir:g}", f"{a.minority[0]}v{a.majority}-ir{a.ir:g}"
    elif a.imbalance == "drop":
        classes = ", ".join(map(str, a.minority))
        what, slug = f"{a.drop:g}% of classes {classes} removed", f"{a.drop:g}-" + "-".join(map(str, a.minority))
    else:
        what, slug = f"ir {a.ir:g}", f"ir{a.ir:g}"
    return f"{a.dataset} {a.imbalance}, {what}", f"{a.dataset}-{a.imbalance}-{slug}"


def judge(d: Path, a, cache: dict) -> dict:
    """Evaluate run ``d``: its gan classifier, the cached (or first-trained) baselines, its images."""
    ecfg = evaluate.EvalConfig(conditions=("imbalanced", "gan", "full"), repeats=1, tsne_points=0,
                               epochs=a.clf_epochs, quality_images=a.images, ssim_pairs=a.pairs, device=a.device,
                               seed=a.seed)
    say = lambda s: None  # noqa: E731
    c = evaluate.step_load(d, ecfg, say)
    evaluate.step_pool(c, say)
    if cache and cache["counts"] != c.counts:
        raise RuntimeError("the cached baselines belong to another scenario")
    names = (["gan"] if c.pool else []) + [n for n in BASELINES if n not in cache]
    sets = {n: conditions.training_set(n, c) for n in names}
    models = evaluate.step_fit(c, sets, {n: [a.seed] for n in sets}, lambda *_: None)
    results = {}
    for n, ms in models.items():
        results[n] = evaluate.step_test(c, evaluate.test_logits(c, ms[0]), sets[n])
        if n in BASELINES:
            cache[n] = (results[n], ms[0])
    cache["counts"] = c.counts
    results.update({n: cache[n][0] for n in BASELINES})
    quality = evaluate.step_quality(c, cache["full"][1]) if c.pool and a.images else None
    return {"c": c, "results": results, "quality": quality}


def method_row(method: str, option: str, a, root: Path, cache: dict) -> dict:
    kw = dict(dataset=a.dataset, data_root=a.data_root, imbalance=a.imbalance, ir=a.ir, drop=a.drop,
              minority=tuple(a.minority), majority=a.majority, method=method, device=a.device, seed=a.seed)
    if a.budget == "quick":
        kw.update(steps=a.steps, ae_steps=min(a.ae_steps, TrainConfig.ae_steps), width=a.width,
                  sample_every=max(50, a.steps // 4), checkpoint_every=a.steps)
    elif a.budget == "measured":
        steps = budgets.default_steps(method, a.dataset)
        if not steps:
            raise SystemExit(f"{method} has no measured budget on {budgets.family(a.dataset)}: run bench/converge.py "
                             "first, or pass --budget quick.")
        kw.update(steps=steps, checkpoint_every=steps)  # the card's width and autoencoder budget
    elif a.budget == "card":
        kw.update(steps=a.steps, checkpoint_every=a.steps)  # the card's width and autoencoder budget, --steps
    cfg = starting_config(**kw, **OPTIONS[option], **a.overrides)  # paper defaults, then budget, option, --set
    d = runs.create(cfg, root)
    t = time.perf_counter()
    train.train(d, log=lambda s: None)
    return judged_row(d, option, a, cache, time.perf_counter() - t)


def options_label(option: str, overrides: dict) -> str:
    """A row's ``options``: the option's name, then each --set as key=value ("none cagan_reg=wgan-gp")."""
    return option + "".join(f" {k}={v}" for k, v in overrides.items())


def option_of(cfg) -> str:
    """The --options name of a run's config (the custom values themselves when none matches)."""
    changed = {k: getattr(cfg, k) for k in sorted({k for f in OPTIONS.values() for k in f})
               if getattr(cfg, k) != getattr(TrainConfig, k)}
    return next((name for name, fields in OPTIONS.items() if fields == changed),
                " ".join(f"{k}={v}" for k, v in changed.items()))


def trained_run(d: Path, a) -> tuple[str, str, float]:
    """(method, option, training seconds) of a finished run ``d`` of this scenario, or SystemExit saying why not."""
    try:
        cfg = runs.finished_config(d)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    want = starting_config(dataset=a.dataset, imbalance=a.imbalance, ir=a.ir, drop=a.drop,
                           minority=tuple(a.minority), majority=a.majority, method=cfg.method)
    scen = lambda c: (c.dataset, c.imbalance_spec().describe())  # noqa: E731 (the fields that matter to it)
    if scen(cfg) != scen(want):
        raise SystemExit(f"{d}: {' '.join(scen(cfg))} is not this table's scenario ({' '.join(scen(want))}).")
    if a.overrides:
        raise SystemExit("--set applies to runs this script trains; --from-runs judges runs as they were trained.")
    q = (d / "quality.jsonl").read_text().splitlines() if (d / "quality.jsonl").exists() else []
    train_s = float(json.loads(q[-1]).get("train_s", "nan")) if q else float("nan")
    return cfg.method, option_of(cfg), train_s


def judged_row(d: Path, option: str, a, cache: dict, t_train: float) -> dict:
    """The table's row for the trained run ``d``: its images judged, its gan classifier against the baselines."""
    cfg, st = TrainConfig.load(d / "config.json"), runs.read_status(d)
    card = catalog.card(cfg.method)
    t = time.perf_counter()
    out = judge(d, a, cache)
    t_eval = time.perf_counter() - t
    c, res, q = out["c"], out["results"], out["quality"] or {}
    rows = q.get("per_class") or []
    modeled = [r for r in rows if r.get("generated")]
    minority = int(min(range(len(c.counts)), key=lambda i: c.counts[i]))
    rec = lambda n: res[n]["per_class"][minority]["recall"] if n in res else None  # noqa: E731
    acsa = lambda n: res[n]["acsa"] if n in res else None  # noqa: E731
    minorities = lambda n: {m["class"]: round(m["recall"], 3) for m in res[n]["minorities"]} if n in res else {}  # noqa: E731
    ov = q.get("overall") or {}
    return {
        "method": cfg.method, "options": options_label(option, a.overrides),
        "steps": runs.adversarial_step(st, cfg.steps), "ae_steps": cfg.ae_steps if "ae_steps" in (card.fields or ()) else 0,
        "width": cfg.width, "train_s": round(t_train, 1), "eval_s": round(t_eval, 1),
        "class_acc_min": min((r["class_accuracy"] for r in modeled), default=None),
        "class_acc": ov.get("class_accuracy"),
        "class_acc_per_class": json.dumps({r["class"]: round(r["class_accuracy"], 3) for r in modeled}),
        "ssim_gen": ov.get("ssim_gen"), "ssim_real": ov.get("ssim_real"),
        "nn_ssim_gen": ov.get("nn_ssim_gen"), "nn_ssim_real": ov.get("nn_ssim_real"),
        "domain_fid": ov.get("domain_fid"), "fid_real": q.get("fid_real"),
        "fid_per_class": json.dumps({r["class"]: round(r["domain_fid"], 2) for r in modeled}),
        "minority_class": c.names[minority],
        "recall_imbalanced": rec("imbalanced"), "recall_gan": rec("gan"), "recall_full": rec("full"),
        "minority_recalls_imbalanced": json.dumps(minorities("imbalanced")),
        "minority_recalls_gan": json.dumps(minorities("gan")),
        "acsa_imbalanced": acsa("imbalanced"), "acsa_gan": acsa("gan"), "acsa_full": acsa("full"),
        "clf_steps": c.steps, "run": d.name,
        "precision": runs.read_status(d).get("precision"),  # what the GAN trained in (TrainConfig.precision)
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=TrainConfig.dataset)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--imbalance", default=TrainConfig.imbalance)
    ap.add_argument("--ir", type=float, default=TrainConfig.ir)
    ap.add_argument("--drop", type=float, default=TrainConfig.drop)
    ap.add_argument("--minority", type=int, nargs="+", default=list(TrainConfig.minority))
    ap.add_argument("--majority", type=int, default=TrainConfig.majority, help="binary: the majority class")
    ap.add_argument("--methods", nargs="*", default=list(catalog.method_names()))
    ap.add_argument("--options", nargs="+", choices=list(OPTIONS), default=["none"],
                    help="one row per (method, option); all methods of one option before the next")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a TrainConfig field for every row, after the paper defaults and the option (repeatable)")
    ap.add_argument("--budget", choices=("measured", "quick", "card", "full"), default="measured",
                    help="measured: each method's converged budget on the dataset's family (bench/converge.py); "
                         "card: the card's width and autoencoder budget at --steps adversarial steps")
    ap.add_argument("--steps", type=int, default=600, help="quick and card budgets: adversarial steps")
    ap.add_argument("--ae-steps", type=int, default=200, help="quick budget: autoencoder steps at most")
    ap.add_argument("--width", type=int, default=32, help="quick budget: network width")
    ap.add_argument("--clf-epochs", type=int, default=evaluate.EvalConfig.epochs,
                    help=f"classifier budget in epochs of the balanced set (at most {evalconfig.STEP_CAP} steps)")
    ap.add_argument("--images", type=int, default=200, help="generated images per class judged")
    ap.add_argument("--pairs", type=int, default=100, help="SSIM pairs per class")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--runs", default=None, help="keep the runs here (default: a temporary folder)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--from-runs", nargs="+", default=None, metavar="DIR",
                    help="judge these finished runs (one row each) instead of training; --methods and --budget unused")
    ap.add_argument("--append", action="store_true",
                    help="keep the rows of --out for other (method, options, steps); replace the ones measured again")
    a = ap.parse_args()
    a.overrides = parse_set(a.overrides)
    import pandas as pd
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
        os.environ["IMBAGAN_THREADS"] = str(a.threads)  # the evaluation's steps read it too
    root = Path(a.runs) if a.runs else Path(tempfile.mkdtemp(prefix="imbagan-quality-"))
    label, slug = scenario(a)
    budget = {"quick": f"quick: {a.steps} adversarial steps (autoencoder ≤ {a.ae_steps}), width {a.width}",
              "measured": "measured: each method's converged budget (bench/converge.py), its card's width",
              "card": f"card: {a.steps} adversarial steps, each method's card width and autoencoder budget",
              "full": "full: each method's default steps and width"}[a.budget]
    budget += f"; classifiers {a.clf_epochs} epochs (≤ {evalconfig.STEP_CAP} steps); {a.images} images, {a.pairs} pairs a class"
    head = (f"# {label}; budget {budget}; {machine(a.device)}, torch threads {torch.get_num_threads()}, load average at "
            f"start {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(head, flush=True)
    out = Path(a.out) if a.out else RESULTS / f"quality-{slug}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = pd.DataFrame()
    if a.append and out.exists():
        kept = pd.read_csv(out)
    rows, cache = [], {}

    def write() -> None:
        new = pd.DataFrame(rows)
        old = kept
        if len(old) and len(new):  # a row measured again (method, options, steps) replaces the old one
            done = set(zip(new["method"], new["options"], new["steps"].astype(int)))
            old = old[[(m, o, int(n)) not in done
                       for m, o, n in zip(old["method"], old["options"].astype(str), old["steps"])]]
        pd.concat([old, new], ignore_index=True).to_csv(out, index=False)

    if a.from_runs:
        found = [(Path(d), *trained_run(Path(d), a)) for d in a.from_runs]  # every run checked before any is judged
        jobs = [(lambda d=d, o=o, s=s: judged_row(d, o, a, cache, s), m) for d, m, o, s in found]
        budget = f"trained runs, judged as they are ({', '.join(Path(d).name for d in a.from_runs)})" + budget[budget.index(";"):]
    else:
        jobs = [(lambda m=m, o=o: method_row(m, o, a, root, cache), m) for o in a.options for m in a.methods]
    for job, m in jobs:
        row = job()
        row.update(dataset=a.dataset, imbalance=a.imbalance, scenario=label, budget=budget,
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), machine=machine(a.device),
                   load_avg=round(os.getloadavg()[0], 1))
        rows.append(row)
        write()  # after every row: a stopped bench keeps what it measured
        print(f"{m:>9} [{row['options']}]: class acc min {row['class_acc_min']}, SSIM gen {row['ssim_gen']} vs "
              f"real {row['ssim_real']}, NN-SSIM {row['nn_ssim_gen']} vs {row['nn_ssim_real']}, domain FID "
              f"{row['domain_fid']} {row['fid_per_class']}, minority recall {row['recall_imbalanced']} -> "
              f"{row['recall_gan']} -> {row['recall_full']} (train {row['train_s']} s, eval {row['eval_s']} s, "
              f"load {row['load_avg']})", flush=True)
    df = pd.DataFrame(rows)
    cols = ["method", "options", "class_acc_min", "ssim_gen", "ssim_real", "nn_ssim_gen", "nn_ssim_real", "domain_fid",
            "recall_imbalanced", "recall_gan", "recall_full", "train_s", "eval_s"]
    print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {out}; load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
