"""The default path, timed: what a person meets in their first minutes, through the calls the pages make.

    python bench/demo.py                      # the app's defaults (digits), as Home's start-here path
    python bench/demo.py --dataset mnist --data-root ../shared/datasets --imbalance step --ir 100 --method bagan_gp

Launch (``runs.start`` with "Evaluate it too", as the Train page's button does by default) -> first
sample grid -> training done -> the verdict (eval/metrics.json with its verdict: what the Evaluate page
shows first) -> the evaluation done (image quality and t-SNE too). The evaluation runs alongside the
training: the classifiers that need no generated images train while the GAN does, each process on half
the cores. Each phase's wall time is printed with the machine and its load average; the targets on 2
CPU cores are launch -> first grid <= 10 s and launch -> evaluated report <= 60 s.

    python bench/demo.py --busy 1 --together 2   # issue 22: beside one busy process, and two runs at once

``--busy 1`` runs the same path again beside one busy process (started and stopped here) and prints the
ratio to the quiet run (target <= 2.2x on 2 cores); ``--together 2`` launches two trainings at once and
prints each one's time against one alone (target <= 2.2x each).
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
from machine import Busy, load_average  # noqa: E402
from quality import machine  # noqa: E402


def wait(pred, timeout: float, what: str, poll: float = 0.1) -> float:
    t = time.perf_counter()
    while not pred():
        if time.perf_counter() - t > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(poll)
    return time.perf_counter()


def default_path(a, root: Path) -> tuple[dict, dict, Path]:
    """One launch of the default path, timed phase by phase; returns (phases, eval metrics, run dir)."""
    cfg = starting_config(**_kw(a), evaluate_after=True)  # what the Train form pre-fills and launches
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
    phases["launch -> evaluated report (+ quality, t-SNE)"] = time.perf_counter() - t0
    est = runs.read_status(d / "eval")
    if est.get("state") != "done":
        raise SystemExit(f"evaluation ended {est.get('state')}: {est.get('error')}\n{runs.log_tail(d / 'eval')}")
    return phases, json.loads((d / "eval" / "metrics.json").read_text()), d


def together(a, root: Path, n: int) -> list[float]:
    """``n`` default trainings (no evaluation) launched at once, as from the Train page; each one's launch ->
    training done, in seconds."""
    t0 = time.perf_counter()
    ds = [root / runs.start(starting_config(**_kw(a), evaluate_after=False), root) for _ in range(n)]
    ends: dict[Path, float] = {}

    def all_done() -> bool:
        for d in ds:
            if d not in ends and runs.read_status(d).get("state") in ("done", "failed", "stopped"):
                if runs.read_status(d).get("state") != "done":
                    raise SystemExit(f"{d.name} ended {runs.read_status(d).get('state')}\n{runs.log_tail(d)}")
                ends[d] = time.perf_counter() - t0
        return len(ends) == n
    wait(all_done, a.timeout, f"{n} trainings")
    return [ends[d] for d in ds]


def _kw(a) -> dict:
    kw = dict(dataset=a.dataset, data_root=a.data_root, imbalance=a.imbalance, method=a.method, device=a.device)
    if a.imbalance != TrainConfig.imbalance:
        kw["ir"] = a.ir
    return kw


def report(phases: dict, m: dict, d: Path) -> None:
    for name, secs in phases.items():
        print(f"{name:<46} {secs:7.1f} s")
    timing = m.get("timing", {})
    for k in ("fit_s", "waited_s", "generate_s", "quality_s", "tsne_s", "total_s"):
        if k in timing:
            print(f"  evaluation: {k[:-2]:<16} {timing[k]:7.1f} s")
    print(f"  evaluation threads: {timing.get('threads')} at the start, changes {timing.get('thread_changes')} "
          f"([seconds in, threads]; {timing.get('thread_source')})")
    print("minority recall (first minority class): " + ", ".join(
        f"{c} {v['spread']['minority_recall']['mean']:.3f}" for c, v in m["conditions"].items() if v.get("spread")))
    for v in (m.get("verdict") or {}).get("conditions", {}).values():
        print("verdict: " + v["text"])
    print(f"run {d}")


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
    ap.add_argument("--busy", type=int, default=0,
                    help="also run the default path beside this many busy processes (started and stopped here) "
                         "and print the ratio to the quiet run")
    ap.add_argument("--together", type=int, default=0,
                    help="also launch this many default trainings at once and print each one's time against one "
                         "training alone")
    a = ap.parse_args()
    root = Path(a.runs) if a.runs else Path(tempfile.mkdtemp(prefix="imbagan-demo-"))
    cfg = starting_config(**_kw(a), evaluate_after=True)
    print(f"# {machine()}; load average {load_average()}; {cfg.method} on {cfg.dataset} {cfg.imbalance}, "
          f"{cfg.steps} steps (+{cfg.ae_steps} autoencoder where used); "
          f"threads: {os.environ.get('IMBAGAN_THREADS') and 'fixed by $IMBAGAN_THREADS' or 'the free cores'}")
    phases, m, d = default_path(a, root)
    print("\n## quiet")
    report(phases, m, d)
    key = "launch -> evaluated report (+ quality, t-SNE)"
    if a.busy:
        with Busy(a.busy):
            busy_phases, bm, bd = default_path(a, root)
        print(f"\n## beside {a.busy} busy process(es)")
        report(busy_phases, bm, bd)
        print(f"\nbusy / quiet, launch -> evaluated report: {busy_phases[key]:.1f} / {phases[key]:.1f} s = "
              f"{busy_phases[key] / phases[key]:.2f}x; launch -> verdict: "
              f"{busy_phases['launch -> verdict'] / phases['launch -> verdict']:.2f}x")
    if a.together:
        alone = together(a, root, 1)[0]
        many = together(a, root, a.together)
        print(f"\n## {a.together} trainings launched together (no evaluation)\none alone: {alone:.1f} s; together: "
              + ", ".join(f"{t:.1f} s ({t / alone:.2f}x)" for t in many))
    print(f"\nload average at the end {load_average()}")


if __name__ == "__main__":
    main()
