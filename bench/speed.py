"""Training speed of every method, float32 eager against the default path, quiet and beside a busy process.

    python bench/speed.py                                   # digits, every method
    python bench/speed.py --dataset mnist --data-root ../shared/datasets --imbalance step --ir 100 \\
        --methods acgan cagan bagan_gp --width 32

For each method, in one process and one run (so the numbers compare as ratios):

- **float32 eager**: float32, torch's default threads (one per usable core): what the code did before
  the precision and thread policies;
- **default**: what a run launched from the app or the CLI does: ``precision="auto"`` (bf16 autocast on
  a CPU with native bf16 for the methods measured in it, ``uses_bf16``) and the thread policy
  (``imbagan.cores.ThreadPolicy``, checked at every step as a tick would);

each measured on the quiet machine and again beside one busy process (``--busy``, a Python busy loop
that the benchmark starts and stops itself). Prints adversarial steps/s, the ratios default/eager and
busy/quiet, and the threads the policy chose, with the machine and its load average.

``--variants`` instead times what else might make a step cheaper (issue 22 §2), each against float32 eager
with torch's default threads, quiet, in interleaved rounds (``--rounds``; the median of each is printed, so
a load spike in one round does not decide): Adam with ``foreach=True`` or ``fused=True`` (torch's CPU
default is neither), the networks in ``channels_last`` memory format, bf16 autocast, and bf16 with
``channels_last``. Variants share one method instance, so the optimiser state carries over between them.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import Busy, cpu_model, load_average  # noqa: E402

from imbagan import cores  # noqa: E402
from imbagan.batches import resolve_device  # noqa: E402
from imbagan.config import TrainConfig  # noqa: E402
from imbagan.methods import METHODS  # noqa: E402
from imbagan.train import build, uses_bf16  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def steps_per_s(method, device: torch.device, bf16: bool, policy: cores.ThreadPolicy | None, steps: int,
                warmup_s: float, max_s: float) -> float:
    """Adversarial steps per second: a warm-up of at least ``warmup_s`` seconds (long enough for the thread
    policy's first readings), then ``steps`` timed steps, or fewer if they pass ``max_s`` (at least 3)."""
    def step():
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            method.train_step()
        if policy is not None:
            policy.check()
    t = time.perf_counter()
    n = 0
    while n < 3 or time.perf_counter() - t < warmup_s:
        step()
        n += 1
    _sync(device)
    t, n = time.perf_counter(), 0
    while n < steps and (n < 3 or time.perf_counter() - t < max_s):
        step()
        n += 1
    _sync(device)
    return n / (time.perf_counter() - t)


def measure(name: str, a, device: torch.device, busy: int) -> dict:
    cfg = TrainConfig(dataset=a.dataset, data_root=a.data_root, imbalance=a.imbalance, ir=a.ir, method=name,
                      batch_size=a.batch_size, width=a.width, device=str(device))
    method, _ = build(cfg, device)
    method.finish_pretrain()  # the adversarial step is what a budget is made of
    bf16 = uses_bf16(cfg, method, device)
    row = {"method": name, "default_precision": "bf16" if bf16 else "fp32"}
    for label, n_busy in (("quiet", 0), ("busy", busy)):
        with Busy(n_busy):
            torch.set_num_threads(cores.usable_cores())  # torch's default
            row[f"{label}_fp32"] = steps_per_s(method, device, False, None, a.steps, a.warmup_s, a.max_s)
            policy = cores.ThreadPolicy()  # a fresh worker's policy, starting from every core
            row[f"{label}_default"] = steps_per_s(method, device, bf16, policy, a.steps, a.warmup_s, a.max_s)
            row[f"{label}_threads"] = policy.threads
    torch.set_num_threads(cores.usable_cores())
    return row


VARIANTS = ("fp32", "foreach Adam", "fused Adam", "channels_last", "bf16", "bf16 + channels_last")


def _set_variant(method, variant: str) -> bool:
    """Put ``method`` in ``variant``'s form (optimisers rebuilt with their state, networks' memory format);
    returns whether its steps run under bf16 autocast."""
    kw = {"foreach Adam": {"foreach": True}, "fused Adam": {"fused": True}}.get(variant, {"foreach": False})
    for attr, v in list(vars(method).items()):
        if isinstance(v, torch.optim.Adam):
            # The same groups and hyperparameters; a group's own foreach / fused entry would override kw.
            opt = type(v)([{k: x for k, x in g.items() if k not in ("foreach", "fused")} for g in v.param_groups],
                          **kw)
            opt.state.update(v.state)
            setattr(method, attr, opt)
        elif isinstance(v, torch.nn.Module):
            v.to(memory_format=torch.channels_last if "channels_last" in variant else torch.contiguous_format)
    return variant.startswith("bf16")


def variants(name: str, a, device: torch.device) -> dict:
    import statistics

    cfg = TrainConfig(dataset=a.dataset, data_root=a.data_root, imbalance=a.imbalance, ir=a.ir, method=name,
                      batch_size=a.batch_size, width=a.width, device=str(device))
    method, _ = build(cfg, device)
    method.finish_pretrain()
    torch.set_num_threads(cores.usable_cores())
    rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(a.rounds):
        for v in VARIANTS:
            bf16 = _set_variant(method, v)
            rates[v].append(steps_per_s(method, device, bf16, None, a.steps, a.warmup_s / a.rounds,
                                        a.max_s / a.rounds))
    return {v: statistics.median(r) for v, r in rates.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--imbalance", default="step")
    ap.add_argument("--ir", type=float, default=10.0)
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--width", type=int, default=TrainConfig.width)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per measurement (fewer past --max-s)")
    ap.add_argument("--warmup-s", type=float, default=2.0, help="seconds of warm-up before each measurement")
    ap.add_argument("--max-s", type=float, default=20.0, help="seconds at most per measurement")
    ap.add_argument("--busy", type=int, default=1, help="busy processes beside the 'busy' measurements")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--variants", action="store_true",
                    help="time Adam's foreach / fused forms, channels_last and bf16 against float32 eager instead")
    ap.add_argument("--rounds", type=int, default=4, help="--variants: interleaved rounds, median reported")
    a = ap.parse_args()
    if cores.override():
        raise SystemExit(f"unset ${cores.ENV}: it fixes the threads, and this benchmark compares thread policies")
    device = resolve_device(a.device)
    head = (f"# {cpu_model()}, {os.cpu_count()} cores ({cores.usable_cores()} usable), {device}; native bf16: "
            f"{torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()}; "
            f"{a.dataset} {a.imbalance} IR {a.ir}, batch {a.batch_size}, width {a.width}; load average {load_average()}")
    print(head, flush=True)
    if a.variants:
        print("method | " + " | ".join(VARIANTS) + "\n" + "|".join("---" for _ in range(len(VARIANTS) + 1)))
        for name in a.methods:
            r = variants(name, a, device)
            print(f"{name} | {r['fp32']:.2f} | " + " | ".join(f"{r[v] / r['fp32']:.2f}x" for v in VARIANTS[1:]),
                  flush=True)
        print(f"(adversarial steps/s in float32 eager, then each variant's ratio to it; median of {a.rounds} "
              f"interleaved rounds; {cores.usable_cores()} threads; load average at the end {load_average()})")
        return
    rows = []
    cols = ("method", "precision", "quiet fp32", "quiet default", "default/fp32", "busy fp32", "busy default",
            "default/fp32", "busy/quiet (default)", "threads quiet/busy")
    print(" | ".join(cols))
    print("|".join("---" for _ in cols))
    for name in a.methods:
        r = measure(name, a, device, a.busy)
        r["speedup_quiet"] = r["quiet_default"] / r["quiet_fp32"]
        r["speedup_busy"] = r["busy_default"] / r["busy_fp32"]
        r["slowdown_busy"] = r["quiet_default"] / r["busy_default"]
        rows.append(r)
        print(f"{name} | {r['default_precision']} | {r['quiet_fp32']:.2f} | {r['quiet_default']:.2f} | "
              f"{r['speedup_quiet']:.2f}x | {r['busy_fp32']:.2f} | {r['busy_default']:.2f} | {r['speedup_busy']:.2f}x | "
              f"{r['slowdown_busy']:.2f}x slower | {r['quiet_threads']}/{r['busy_threads']}", flush=True)
    print(f"(adversarial steps/s; 'default' = precision auto + the thread policy; busy = {a.busy} busy process(es) "
          f"beside; load average at the end {load_average()})")
    if a.json:
        meta = {"machine": head, "torch": torch.__version__, **{k: v for k, v in vars(a).items() if k != "json"}}
        Path(a.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
