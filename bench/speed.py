"""Training speed of every method, measured in one process so the numbers compare as ratios.

    python bench/speed.py                                  # digits, CPU or whatever 'auto' finds
    python bench/speed.py --dataset mnist --data-root ../shared/datasets --imbalance step --ir 100

For each method: adversarial steps/s and images/s (batch images through D per second) after a
warm-up, the autoencoder stage's steps/s where there is one, and the ratio to the first method.
Prints a table and, with --json, writes the numbers to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imbagan.batches import resolve_device
from imbagan.config import TrainConfig  # noqa: E402
from imbagan.methods import METHODS  # noqa: E402
from imbagan.train import build  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(fn, n: int, device: torch.device) -> float:
    """Seconds per call of fn over n calls, after the caller's warm-up; one sync at each end."""
    _sync(device)
    t = time.perf_counter()
    for _ in range(n):
        fn()
    _sync(device)
    return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--imbalance", default="step")
    ap.add_argument("--ir", type=float, default=10.0)
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per method")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="CPU intra-op threads")
    ap.add_argument("--json", default=None, help="write the results here")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    rows = []
    for name in a.methods:
        cfg = TrainConfig(dataset=a.dataset, data_root=a.data_root, imbalance=a.imbalance, ir=a.ir, method=name,
                          batch_size=a.batch_size, width=a.width, device=str(device))
        method, data = build(cfg, device)
        ae = None
        if method.pretrain_steps:
            for _ in range(a.warmup):
                method.pretrain_step()
            ae = 1.0 / time_steps(method.pretrain_step, a.steps, device)
        method.finish_pretrain()
        for _ in range(a.warmup):
            method.train_step()
        s = 1.0 / time_steps(method.train_step, a.steps, device)
        rows.append({"method": name, "steps_per_s": s, "img_per_s": s * a.batch_size, "ae_steps_per_s": ae})
        print(f"{name:9s} {s:8.2f} steps/s {s * a.batch_size:9.0f} img/s"
              + (f"   autoencoder {ae:7.2f} steps/s" if ae else ""), flush=True)
    base = rows[0]["steps_per_s"]
    print(f"\nratio to {rows[0]['method']} (same process, {device}, {torch.get_num_threads()} threads, "
          f"{a.dataset} {a.imbalance} IR {a.ir}, batch {a.batch_size}, width {a.width}):")
    for r in rows:
        r["ratio"] = r["steps_per_s"] / base
        print(f"  {r['method']:9s} x{r['ratio']:.2f}")
    if a.json:
        meta = {"device": str(device), "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                "torch": torch.__version__, **{k: v for k, v in vars(a).items() if k != "json"}}
        Path(a.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
