"""The honest verdict on one binary setting: the GAN against the fixes a practitioner tries first.

    python bench/verdict.py --dataset fashion_mnist --data-root ../shared/datasets   # sandal (5) vs sneaker (7)
    python bench/verdict.py --dataset mnist --data-root ../shared/datasets           # 5 vs 6
    python bench/verdict.py --dataset mnist --budget full                            # a GPU

The setting is imbagan's ``binary`` profile at IR 100: the minority class keeps majority / 100 of its
training images, the majority keeps all, the test split keeps both classes whole. One run of
``--method`` (default: ``gan``, the best of bench/quality.py on the default scenario) is trained with
its paper defaults under the budget, then evaluated (imbagan.evaluate) with every condition below and
``--repeats`` classifier seeds each (the same seeds for every condition, so differences are paired).

It prints, and writes to ``--out`` (default bench/results/verdict-<dataset>.csv), one line per
condition: ACSA and minority recall, mean ± std over the seeds; then the verdict of each GAN condition
against the untreated classifier and the best baseline, each difference with its standard error and
the word the rule gives (imbagan.verdict.RULE).

``--gan-seeds 0 1`` trains one run per GAN seed (the seed also draws the minority subset) and evaluates
each with the same classifier seeds; the verdict then pools the (GAN seed, classifier seed) pairs, so its
spread includes the GAN's own seed (issue 21 §4). Each condition's row lists every pair's value.

``--options diffaugment`` (or ``lecam``; bench/quality.py's OPTIONS) and ``--set KEY=VALUE`` train the GAN
with an option or a changed setting on top of its paper defaults, as bench/quality.py's rows do; the CSV's
``options`` column says which, and its default name gains the method and the option
(verdict-mnist-gan-diffaugment.csv), so a verdict with an option never replaces the plain one.

``--from-runs RUN_DIR ...`` judges finished runs instead of training them (one method and one scenario,
one run per GAN seed, any imbalance profile): bench/converge.py's curves end at or past the measured
budget, so their last checkpoints give the multi-class scenario's verdict (MNIST step IR 100) without
training again. Each run is evaluated with its own seed as the first classifier seed, as a trained one is.

Budgets: ``measured`` (the default) trains the GAN for its method's measured budget on the dataset's
family (imbagan.budgets; bench/converge.py), at the card's width, and refuses a method without one;
``quick`` (for a CPU) trains the GAN ``--steps`` steps at width ``--width``; both train the classifiers
``--epochs`` epochs of the balanced set at width ``--eval-width``; ``full`` keeps TrainConfig's and
EvalConfig's own budgets.
Generated-image quality and t-SNE are off: the verdict does not use them.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imbagan import budgets, evalconfig, evaluate, runs, train, verdict  # noqa: E402
from imbagan.config import starting_config  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import load_average, machine  # noqa: E402
from quality import OPTIONS, option_of, options_label, parse_set  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CONDITIONS = ("imbalanced", "logit_adjust", "la_loss", "drw", "augment", "oversample", "class_weight", "gan", "full")
# (minority, majority, title) per dataset: AGGAN Table 2's pairs.
PAIRS = {"fashion_mnist": (5, 7, "Fashion-MNIST sandal (5, minority) vs sneaker (7)"),
         "mnist": (5, 6, "MNIST 5 (minority) vs 6")}


def pm(sp: dict) -> str:
    return "—" if sp.get("mean") is None else f"{sp['mean']:.3f} ± {sp['std']:.3f}"


def rows_of(out: dict, common: dict) -> list[dict]:
    """One CSV row per condition; a GAN condition's row carries its verdict's columns too."""
    rows = []
    v = out.get("verdict") or {}
    for name, m in out["conditions"].items():
        sp = m["spread"]
        row = {"condition": name, "acsa_mean": sp["acsa"]["mean"], "acsa_std": sp["acsa"]["std"],
               "minority_recall_mean": sp["minority_recall"]["mean"],
               "minority_recall_std": sp["minority_recall"]["std"], "seeds": sp["acsa"]["n"],
               "acsa_values": " ".join(f"{r['acsa']:.4f}" for r in m["repeats"]),
               "minority_recall_values": " ".join(f"{r['minority_recall']:.4f}" for r in m["repeats"]),
               "train_size": m["train_size"], "note": m.get("note", "")}
        cv = (v.get("conditions") or {}).get(name)
        if cv:
            row["best_baseline"] = cv["best_baseline"]
            for ref, tag in ((verdict.UNTREATED, "vs_imbalanced"), (cv["best_baseline"], "vs_best")):
                for metric in verdict.METRICS:
                    j = (cv["vs"].get(ref) or {}).get(metric) or {}
                    row[f"{tag}_{metric}_diff"] = j.get("diff")
                    row[f"{tag}_{metric}_se"] = j.get("se")
                    row[f"{tag}_{metric}_word"] = j.get("word")
            row["verdict"] = cv["text"]
        rows.append(row | common)
    return rows


def pooled(outs: list[tuple[Path, dict]]) -> dict:
    """One evaluation's shape from several GAN seeds' evaluations: each condition's repeats are the
    (GAN seed, classifier seed) pairs in one order, so differences stay paired, and the verdict is taken
    over all of them (imbagan.verdict's rule, with N = GAN seeds x classifier seeds)."""
    if len(outs) == 1:
        return outs[0][1]
    first = outs[0][1]
    conditions = {}
    for name in first["conditions"]:
        reps = [r for _, o in outs for r in o["conditions"][name]["repeats"]]
        m = dict(first["conditions"][name])
        m["repeats"] = reps
        m["spread"] = {"acsa": verdict.spread([r["acsa"] for r in reps]),
                       "minority_recall": verdict.spread([r["minority_recall"] for r in reps])}
        conditions[name] = m
    per_seed = {n: {"acsa": [r["acsa"] for r in m["repeats"]],
                    "minority_recall": [r["minority_recall"] for r in m["repeats"]]} for n, m in conditions.items()}
    v = verdict.verdicts(per_seed)
    best = next(iter(v.values()))["best_baseline"] if v else None
    return {"conditions": conditions, "verdict": {"conditions": v, "best_baseline": best, "rule": verdict.RULE},
            "timing": first["timing"]}


def finished_runs(paths: list[str]) -> list[tuple[Path, "TrainConfig"]]:
    """The runs that ``--from-runs`` names, with their configs; SystemExit saying why if they are not finished
    runs of one method on one scenario with distinct seeds."""
    from imbagan.config import TrainConfig

    out = []
    for p in paths:
        try:
            out.append((Path(p), runs.finished_config(Path(p))))
        except ValueError as e:
            raise SystemExit(str(e)) from None
    key = lambda c: (c.method, c.dataset, c.imbalance_spec().describe())  # noqa: E731
    if len({key(c) for _, c in out}) > 1:
        raise SystemExit("--from-runs takes runs of one method on one scenario; got "
                         + "; ".join(f"{d.name}: {' '.join(key(c))}" for d, c in out))
    if len({c.seed for _, c in out}) < len(out):
        raise SystemExit("--from-runs takes one run per GAN seed; two of these share a seed.")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=sorted(PAIRS), default="fashion_mnist")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--ir", type=float, default=100.0)
    ap.add_argument("--method", default="gan", help="the GAN (default: bench/quality.py's best on digits)")
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS))
    ap.add_argument("--repeats", type=int, default=3, help="classifier seeds per condition")
    ap.add_argument("--budget", choices=("measured", "quick", "full"), default="measured")
    ap.add_argument("--gan-seeds", type=int, nargs="+", default=None,
                    help="one GAN run per seed, pooled in the verdict (default: --seed alone)")
    ap.add_argument("--steps", type=int, default=600, help="quick budget: the GAN's adversarial steps")
    ap.add_argument("--width", type=int, default=32, help="quick budget: the GAN's width")
    ap.add_argument("--epochs", type=int, default=evaluate.EvalConfig.epochs,
                    help="quick budget: classifier epochs of the balanced set (capped at evalconfig.STEP_CAP steps)")
    ap.add_argument("--eval-width", type=int, default=evaluate.EvalConfig.width,
                    help="quick budget: the classifier CNN's width")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0, help="data subsample, GAN and first classifier seed")
    ap.add_argument("--runs", default=None, help="keep the run here (default: a temporary folder)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--options", choices=list(OPTIONS), default="none",
                    help="train the GAN with this option on (bench/quality.py's OPTIONS)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a TrainConfig field or a method's setting for the GAN, on top of its paper defaults")
    ap.add_argument("--from-runs", nargs="+", default=None, metavar="RUN_DIR",
                    help="judge these finished runs (one method, one scenario, one per GAN seed) instead of training")
    a = ap.parse_args()
    a.overrides = parse_set(a.overrides)
    os.environ.setdefault("IMBAGAN_THREADS", "1")  # a small CPU shared with others; the library reads it
    import torch

    torch.set_num_threads(max(1, int(os.environ["IMBAGAN_THREADS"])))
    minority, majority, title = PAIRS[a.dataset]
    gan_seeds = a.gan_seeds or [a.seed]
    ekw = dict(conditions=tuple(a.conditions), repeats=a.repeats, tsne_points=0, quality_images=0,
               device=a.device, seed=a.seed)
    if a.budget != "full":
        ekw.update(epochs=a.epochs, width=a.eval_width)
    ecfg = evaluate.EvalConfig(**ekw)
    if a.from_runs:
        if a.overrides or a.options != "none":
            raise SystemExit("--options and --set apply to runs this script trains; --from-runs judges runs as "
                             "they were trained.")
        return judge_runs(a, ecfg)
    root = Path(a.runs) if a.runs else Path(tempfile.mkdtemp(prefix="imbagan-verdict-"))
    start_load = load_average()
    outs, cfgs, t_train, t_eval = [], [], 0.0, 0.0
    options = options_label(a.options, a.overrides)
    for g in gan_seeds:
        kw = dict(dataset=a.dataset, data_root=a.data_root, imbalance="binary", ir=a.ir, minority=(minority,),
                  majority=majority, method=a.method, device=a.device, seed=g)
        if a.budget == "quick":
            kw.update(steps=a.steps, width=a.width, sample_every=max(50, a.steps // 4), checkpoint_every=a.steps)
        elif a.budget == "measured":
            steps = budgets.default_steps(a.method, a.dataset)
            if not steps:
                raise SystemExit(f"{a.method} has no measured budget on {budgets.family(a.dataset)}: run "
                                 "bench/converge.py first, or pass --budget quick --steps N.")
            kw.update(steps=steps, checkpoint_every=steps)
        # the method's paper defaults under the setting and the budget, then the option and --set
        cfg = starting_config(**kw, **OPTIONS[a.options], **a.overrides)
        cfgs.append(cfg)
        if g == gan_seeds[0]:
            with_ = "" if options == "none" else f" ({options})"
            budget = (f"{a.budget}: {cfg.method}{with_} {cfg.steps} steps, width {cfg.width}, GAN seeds "
                      f"{' '.join(map(str, gan_seeds))}; classifier {ecfg.classifier} width {ecfg.width}, "
                      f"{ecfg.epochs} epochs (at most {evalconfig.STEP_CAP} steps), {a.repeats} seeds")
            print(f"# {title}, binary IR {a.ir:g}; budget {budget}; {machine(a.device)}, torch threads "
                  f"{torch.get_num_threads()}; load average at start {start_load}", flush=True)
        d = runs.create(cfg, root)
        t = time.perf_counter()
        train.train(d, log=lambda s: None)
        t_train += time.perf_counter() - t
        print(f"trained {d.name} (GAN seed {g}) in {time.perf_counter() - t:.0f} s", flush=True)
        t = time.perf_counter()
        outs.append((d, evaluate.evaluate_run(d, ecfg.replace(seed=g), log=None, log_file=False)))
        t_eval += time.perf_counter() - t
    common = {"dataset": a.dataset, "setting": title, "imbalance": f"binary IR {a.ir:g}", "ir": a.ir,
              "method": a.method, "options": options, "gan_steps": cfgs[0].steps, "budget": budget,
              "gan_seeds": " ".join(map(str, gan_seeds)), "train_s": round(t_train, 1)}
    report(outs, common, start_load, t_eval, Path(a.out) if a.out else RESULTS / trained_name(a.dataset, a.method, options),
           a.device)


def trained_name(dataset: str, method: str, options: str) -> str:
    """The default CSV of a verdict this script trains: verdict-<dataset>.csv for plain gan (its first table),
    else the method and the options too, so that no other method's or option's verdict replaces it."""
    if method == "gan" and options == "none":
        return f"verdict-{dataset}.csv"
    return f"verdict-{dataset}-{method}{options_tail(options)}.csv"


def options_tail(options: str) -> str:
    """The options column as a file name's tail: "" for none, else "-diffaugment", "-lecam-lecam_weight-0.1"."""
    return "" if options == "none" else "-" + re.sub(r"[^A-Za-z0-9._]+", "-", options).strip("-")


def judge_runs(a, ecfg) -> None:
    """``--from-runs``: evaluate finished runs as they were trained, pooled over their GAN seeds."""
    import torch

    from imbagan.data import DATASETS

    got = finished_runs(a.from_runs)
    cfg = got[0][1]
    steps = min(runs.adversarial_step(runs.read_status(d), c.steps) for d, c in got)
    scenario = cfg.imbalance_spec().describe()
    title = f"{DATASETS[cfg.dataset].title}, {scenario}"  # a loaded config names a registered dataset
    seeds = " ".join(str(c.seed) for _, c in got)
    budget = (f"finished runs: {cfg.method} {steps} steps or more, width {cfg.width}, GAN seeds {seeds}; "
              f"classifier {ecfg.classifier} width {ecfg.width}, {ecfg.epochs} epochs (at most "
              f"{evalconfig.STEP_CAP} steps), {a.repeats} seeds")
    start_load = load_average()
    print(f"# {title}; budget {budget}; {machine(a.device)}, torch threads {torch.get_num_threads()}; load average at "
          f"start {start_load}", flush=True)
    outs, t_eval = [], 0.0
    for d, c in got:
        t = time.perf_counter()
        outs.append((d, evaluate.evaluate_run(d, ecfg.replace(seed=c.seed), log=None, log_file=False)))
        t_eval += time.perf_counter() - t
        print(f"evaluated {d.name} (GAN seed {c.seed}) in {time.perf_counter() - t:.0f} s", flush=True)
    common = {"dataset": cfg.dataset, "setting": title, "imbalance": scenario, "ir": cfg.ir, "method": cfg.method,
              "options": option_of(cfg), "gan_steps": steps, "budget": budget, "gan_seeds": seeds, "train_s": float("nan")}
    report(outs, common, start_load, t_eval, Path(a.out) if a.out else RESULTS / from_runs_name(cfg), a.device)


def from_runs_name(cfg) -> str:
    """``--from-runs``' CSV: the scenario as bench/quality.py names its file (mnist-step-ir100), then the method."""
    from quality import scenario

    return f"verdict-{scenario(cfg)[1]}-{cfg.method}{options_tail(option_of(cfg))}.csv"


def precision_of(dirs: list[Path], device: str) -> str:
    """The ``precision`` column: what the GANs trained in (their status.json; "?" where a run does not say) and
    what the classifiers trained in (imbagan.classifiers.fit's "auto": bf16 where the device has it natively),
    e.g. "GAN bf16, classifiers bf16". Tables from different machines then say why their numbers may differ."""
    from imbagan.batches import resolve_device
    from imbagan.classifiers import trains_in_bf16

    gans = sorted({str(runs.read_status(d).get("precision") or "?") for d in dirs})
    clf = "bf16" if trains_in_bf16("auto", resolve_device(device)) else "fp32"
    return f"GAN {'/'.join(gans)}, classifiers {clf}"


def report(outs: list[tuple[Path, dict]], common: dict, start_load: str, t_eval: float, path: Path,
           device: str) -> None:
    """Pool the evaluations, write the CSV and print the table and the verdict."""
    import pandas as pd

    out = pooled(outs)
    common = common | {"eval_s": round(t_eval, 1), "steps_per_classifier": out["timing"]["steps_per_condition"],
                       "date": time.strftime("%Y-%m-%d"), "machine": machine(device), "load_avg_start": start_load,
                       "load_avg_end": load_average(), "run": " ".join(d.name for d, _ in outs),
                       "precision": precision_of([d for d, _ in outs], device)}
    rows = rows_of(out, common)
    df = pd.DataFrame(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)

    print(f"\n{'condition':>13}  {'ACSA':>15}  {'minority recall':>15}  seeds")
    for r in rows:
        print(f"{r['condition']:>13}  {pm({'mean': r['acsa_mean'], 'std': r['acsa_std']}):>15}  "
              f"{pm({'mean': r['minority_recall_mean'], 'std': r['minority_recall_std']}):>15}  {r['seeds']}")
    v = out.get("verdict") or {}
    print(f"\nbest baseline: {v.get('best_baseline')}; rule: {v.get('rule')}")
    for name, cv in (v.get("conditions") or {}).items():
        print(f"verdict: {cv['text']}")
        for ref, per in cv["vs"].items():
            print(f"  vs {ref:>13}: ACSA {verdict.cell(per['acsa'])}, minority recall "
                  f"{verdict.cell(per['minority_recall'])} (points, ± standard error)")
    trained = "not trained here" if common["train_s"] != common["train_s"] else f"{common['train_s']:.0f} s"
    print(f"\nGANs {trained}, evaluations {t_eval:.0f} s ({out['timing']['steps_per_condition']} steps per "
          f"classifier); load average at the end {load_average()}; wrote {path}")


if __name__ == "__main__":
    main()
