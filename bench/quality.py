"""A quality table for every method: train each with its paper defaults, then judge its images.

    python bench/quality.py                                   # digits, the app's default scenario
    python bench/quality.py --dataset mnist --data-root ../shared/datasets --imbalance step --ir 100
    python bench/quality.py --budget full                     # the methods' full default budgets (GPU)

For each method (its card's paper defaults over TrainConfig's, the same settings the app and the
CLI start from), one run is trained in this process, then evaluated with the imbalanced, gan and
full training sets only. It prints and writes (``--out``, default bench/results/quality-<dataset>.csv):

    class accuracy of generated images under the reference classifier, per class and the minimum
    SSIM diversity of generated images against real images' (lower = more diverse)
    nearest-real SSIM of generated images against real-to-real (high = memorised)
    class-matched domain FID against held-out real images (the test split)
    minority recall: imbalanced -> gan -> full

The budget is stated in the output and the CSV: ``--budget quick`` (the default on a CPU) trains
``--steps`` adversarial steps at width ``--width``; ``full`` keeps TrainConfig's own steps and width.
The machine and its load average are printed beside the numbers. The app's Taxonomy page shows the
newest CSV under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imbagan import catalog, evaluate, runs, train  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402
from imbagan.config import TrainConfig, starting_config  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    return f"{cpu_model()}, {os.cpu_count()} cores"


def method_row(method: str, a, root: Path) -> dict:
    card = catalog.card(method)
    kw = dict(dataset=a.dataset, data_root=a.data_root, imbalance=a.imbalance, ir=a.ir, drop=a.drop,
              minority=tuple(a.minority), method=method, device=a.device, seed=a.seed)
    if a.budget == "quick":
        kw.update(steps=a.steps, ae_steps=min(a.ae_steps, TrainConfig.ae_steps), width=a.width,
                  sample_every=max(50, a.steps // 4), checkpoint_every=a.steps)
    cfg = starting_config(**kw)  # the paper defaults, under the budget's overrides
    d = runs.create(cfg, root)
    t = time.perf_counter()
    train.train(d, log=lambda s: None)
    t_train = time.perf_counter() - t
    ecfg = evaluate.EvalConfig(conditions=("imbalanced", "gan", "full"), repeats=1, tsne_points=0,
                               quality_images=a.images, ssim_pairs=a.pairs, device=a.device, seed=a.seed)
    t = time.perf_counter()
    out = evaluate.evaluate_run(d, ecfg, log=None, log_file=False)
    t_eval = time.perf_counter() - t
    q, conds = out.get("quality") or {}, out["conditions"]
    rows = q.get("per_class") or []
    modeled = [r for r in rows if r.get("generated")]
    minority = out["run"]["minority"]
    rec = lambda name: conds[name]["per_class"][minority]["recall"] if name in conds else None  # noqa: E731
    ov = q.get("overall") or {}
    return {
        "method": method, "steps": cfg.steps, "ae_steps": cfg.ae_steps if card.fields and "ae_steps" in card.fields else 0,
        "width": cfg.width, "train_s": round(t_train, 1), "eval_s": round(t_eval, 1),
        "class_acc_min": min((r["class_accuracy"] for r in modeled), default=None),
        "class_acc": ov.get("class_accuracy"),
        "class_acc_per_class": json.dumps({r["class"]: round(r["class_accuracy"], 3) for r in modeled}),
        "ssim_gen": ov.get("ssim_gen"), "ssim_real": ov.get("ssim_real"),
        "nn_ssim_gen": ov.get("nn_ssim_gen"), "nn_ssim_real": ov.get("nn_ssim_real"),
        "domain_fid": ov.get("domain_fid"), "fid_real": q.get("fid_real"),
        "minority_class": out["run"]["classes"][minority],
        "recall_imbalanced": rec("imbalanced"), "recall_gan": rec("gan"), "recall_full": rec("full"),
        "run": d.name,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=TrainConfig.dataset)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--imbalance", default=TrainConfig.imbalance)
    ap.add_argument("--ir", type=float, default=TrainConfig.ir)
    ap.add_argument("--drop", type=float, default=TrainConfig.drop)
    ap.add_argument("--minority", type=int, nargs="+", default=list(TrainConfig.minority))
    ap.add_argument("--methods", nargs="*", default=list(catalog.method_names()))
    ap.add_argument("--budget", choices=("quick", "full"), default="quick")
    ap.add_argument("--steps", type=int, default=600, help="quick budget: adversarial steps")
    ap.add_argument("--ae-steps", type=int, default=200, help="quick budget: autoencoder steps at most")
    ap.add_argument("--width", type=int, default=32, help="quick budget: network width")
    ap.add_argument("--images", type=int, default=200, help="generated images per class judged")
    ap.add_argument("--pairs", type=int, default=100, help="SSIM pairs per class")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--runs", default=None, help="keep the runs here (default: a temporary folder)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    import pandas as pd
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    root = Path(a.runs) if a.runs else Path(tempfile.mkdtemp(prefix="imbagan-quality-"))
    budget = (f"quick: {a.steps} adversarial steps (autoencoder ≤ {a.ae_steps}), width {a.width}"
              if a.budget == "quick" else "full: each method's default steps and width")
    head = (f"# {a.dataset} {a.imbalance} (ir {a.ir}, drop {a.drop}, minority {a.minority}); budget {budget}; "
            f"{machine()}, torch threads {torch.get_num_threads()}, load average at start "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(head, flush=True)
    rows = []
    for m in a.methods:
        t = time.perf_counter()
        row = method_row(m, a, root)
        row.update(dataset=a.dataset, imbalance=a.imbalance, budget=budget, date=time.strftime("%Y-%m-%d"),
                   machine=machine(), load_avg=round(os.getloadavg()[0], 1))
        rows.append(row)
        print(f"{m:>9}: class acc min {row['class_acc_min']}, SSIM gen {row['ssim_gen']} vs real "
              f"{row['ssim_real']}, NN-SSIM {row['nn_ssim_gen']} vs {row['nn_ssim_real']}, domain FID "
              f"{row['domain_fid']}, minority recall {row['recall_imbalanced']} -> {row['recall_gan']} -> "
              f"{row['recall_full']} ({time.perf_counter() - t:.0f} s)", flush=True)
    df = pd.DataFrame(rows)
    out = Path(a.out) if a.out else RESULTS / f"quality-{a.dataset}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    cols = ["method", "class_acc_min", "ssim_gen", "ssim_real", "nn_ssim_gen", "nn_ssim_real", "domain_fid",
            "recall_imbalanced", "recall_gan", "recall_full", "train_s", "eval_s"]
    print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {out}; load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
