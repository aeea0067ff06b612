"""The default path, timed: what a person meets in their first minutes, through the calls the pages make.

    python bench/demo.py                      # the app's defaults (digits), as Home's start-here path
    python bench/demo.py --dataset mnist --data-root ../shared/datasets --imbalance step --ir 100 --method bagan_gp

Launch (``runs.start`` with "Evaluate it too", as the Train page's button does by default) -> first
sample grid -> training done -> the verdict (eval/metrics.json with its verdict: what the Evaluate page
shows first) -> the evaluation done (image quality and t-SNE too). The evaluation runs alongside the
training: the classifiers that need no generated images train while the GAN does, each process on half
the cores. Each phase's wall time is printed with the machine and its load average; the targets on 2
CPU cores are launch -> first grid <= 10 s and launch -> evaluated report <= 60 s.
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

from imbagan import runs  # noqa: E402
from imbagan.config import TrainConfig, starting_config  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import machine  # noqa: E402


def wait(pred, timeout: float, what: str, poll: float = 0.1) -> float:
    t = time.perf_counter()
    while not pred():
        if time.perf_counter() - t > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(poll)
    return time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=TrainConfig.dataset)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--imbalance", default=TrainConfig.imbalance)
    ap.add_argument("--ir", type=float, default=TrainConfig.ir)
    ap.add_argument("--method", default=TrainConfig.method)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--runs", default=None, help="runs folder (default: a temporary one)")
    ap.add_argument("--timeout", type=float, default=1800)
    a = ap.parse_args()
    root = Path(a.runs) if a.runs else Path(tempfile.mkdtemp(prefix="imbagan-demo-"))
    kw = dict(dataset=a.dataset, data_root=a.data_root, imbalance=a.imbalance, method=a.method, device=a.device)
    if a.imbalance != TrainConfig.imbalance:
        kw["ir"] = a.ir
    cfg = starting_config(**kw, evaluate_after=True)  # what the Train form pre-fills and launches
    print(f"# {machine()}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"{cfg.method} on {cfg.dataset} {cfg.imbalance}, {cfg.steps} steps (+{cfg.ae_steps} autoencoder where used)")
    t0 = time.perf_counter()
    run_id = runs.start(cfg, root)  # the Train page's Launch with "Evaluate it too"
    d = root / run_id
    phases = {}
    phases["launch -> first grid"] = wait(lambda: bool(runs.sample_paths(d)), a.timeout, "first grid") - t0
    t_train = wait(lambda: runs.read_status(d).get("state") in ("done", "failed", "stopped"), a.timeout, "training")
    phases["launch -> training done"] = t_train - t0
    st = runs.read_status(d)
    if st.get("state") != "done":
        raise SystemExit(f"training ended {st.get('state')}: {st.get('error')}\n{runs.log_tail(d)}")

    def verdict_written() -> bool:
        return "verdict" in (runs.read_json(d / "eval" / "metrics.json", {}) or {}) or \
            runs.read_status(d / "eval").get("state") in ("failed", "stopped")

    t_verdict = wait(verdict_written, a.timeout, "verdict")
    phases["training done -> verdict"] = t_verdict - t_train
    phases["launch -> verdict"] = t_verdict - t0
    wait(lambda: runs.read_status(d / "eval").get("state") in ("done", "failed", "stopped"), a.timeout, "evaluation")
    t_end = time.perf_counter()
    phases["launch -> evaluated report (+ quality, t-SNE)"] = t_end - t0
    est = runs.read_status(d / "eval")
    if est.get("state") != "done":
        raise SystemExit(f"evaluation ended {est.get('state')}: {est.get('error')}\n{runs.log_tail(d / 'eval')}")
    m = json.loads((d / "eval" / "metrics.json").read_text())
    for name, secs in phases.items():
        print(f"{name:<46} {secs:7.1f} s")
    timing = m.get("timing", {})
    for k in ("fit_s", "waited_s", "generate_s", "quality_s", "tsne_s", "total_s"):
        if k in timing:
            print(f"  evaluation: {k[:-2]:<16} {timing[k]:7.1f} s")
    print("minority recall (first minority class): " + ", ".join(
        f"{c} {v['spread']['minority_recall']['mean']:.3f}" for c, v in m["conditions"].items() if v.get("spread")))
    for v in (m.get("verdict") or {}).get("conditions", {}).values():
        print("verdict: " + v["text"])
    print(f"load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}; run {d}")


if __name__ == "__main__":
    main()
