"""Does bf16 autocast give the same GAN as float32? One table per scenario, from bench/converge.py's curves.

    python bench/precision.py                      # every scenario whose curve CSV holds both precisions
    python bench/precision.py --scenario digits

The curves come from ``bench/converge.py --precision fp32`` and ``--precision bf16`` (with ``--run-to-max
--max-steps N`` for a fixed budget), 2 GAN seeds each. The rule, written before the float32 curves of
cagan, aggan, bagan and bagan_gp were run (issue 22 §2), per method:

- **the budget compared**: the largest snapshot step that all four runs (2 seeds x 2 precisions) reached;
- **FID and class accuracy**: at that step, bf16 is *within noise* of float32 when the difference of the
  two precisions' seed means is no larger than the larger of the two seed spreads (|seed 0 - seed 1|
  within one precision) at that step, for the mean per-class domain FID and for the mean class accuracy;
- **converged step**, where the rule of ``imbagan.convergence`` confirms one for both precisions: reported
  beside, as a check, not a condition (a curve stopped at a fixed budget usually has none).

A method that is within noise on both gets ``bf16_measured = True`` on its card, so ``precision="auto"``
trains it under bf16 on a CPU with native bf16. Writes ``bench/results/precision-<scenario>.csv``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from converge import ALIASES, RESULTS, SCENARIOS  # noqa: E402


def compare(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for method, g in df.groupby("method", sort=False):
        runs = {(p, s): r.sort_values("step") for (p, s), r in g.groupby(["precision", "seed"])}
        need = [(p, s) for p in ("bf16", "fp32") for s in (0, 1)]
        if not all(k in runs for k in need):
            continue
        common = set.intersection(*(set(runs[k]["step"]) for k in need))
        step = max(common)
        row = {"method": method, "step": int(step)}
        verdicts = []
        for col, name in (("fid_mean", "fid"), ("class_acc_mean", "acc")):
            at = {k: float(runs[k].loc[runs[k]["step"] == step, col].iloc[0]) for k in need}
            means = {p: (at[(p, 0)] + at[(p, 1)]) / 2 for p in ("bf16", "fp32")}
            spread = max(abs(at[(p, 0)] - at[(p, 1)]) for p in ("bf16", "fp32"))
            diff = means["bf16"] - means["fp32"]
            ok = abs(diff) <= spread
            verdicts.append(ok)
            row.update({f"{name}_fp32": round(means["fp32"], 3), f"{name}_bf16": round(means["bf16"], 3),
                        f"{name}_diff": round(diff, 3), f"{name}_seed_spread": round(spread, 3),
                        f"{name}_within_noise": ok})
        row["within_noise"] = all(verdicts)
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=None, help="one scenario (default: every one with both precisions)")
    a = ap.parse_args()
    names = [ALIASES.get(a.scenario, a.scenario)] if a.scenario else list(SCENARIOS)
    for name in names:
        path = RESULTS / f"converge-{name}.csv"
        if not path.exists():
            continue
        table = compare(pd.read_csv(path))
        if table.empty:
            continue
        table.insert(0, "scenario", name)
        out = RESULTS / f"precision-{name}.csv"
        table.to_csv(out, index=False)
        print(f"# {name}: bf16 autocast against float32, 2 GAN seeds each, at the largest step all four runs reached")
        print(table.drop(columns=["scenario"]).to_string(index=False))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
