"""Convergence curves: how many adversarial steps each method needs on a scenario, by a rule stated first.

    python bench/converge.py --scenario digits                      # the app's default scenario
    python bench/converge.py --scenario mnist-step-ir100 --data-root ../shared/datasets --methods acgan cagan
    python bench/converge.py --scenario fashion_mnist-binary-5v7-ir100 --data-root ../shared/datasets
    python bench/converge.py --scenario digits --summary-only        # rebuild the summary and plot from the CSV

The rule is imbagan.convergence's (its docstring, written before any curve was run): converged at the
first snapshot after which the mean per-class domain FID never improves on the best so far by more
than 10%; confirmed once the curve reaches twice that step with at least 3 snapshots after it. Each
(method, seed) run trains with the method's card (paper defaults) at TrainConfig's width, takes a
snapshot every ``--every`` adversarial steps (per-class domain FID against real images of the class
that the run did not train on, from the training split; class accuracy under the dataset's reference
CNN; SSIM diversity) and stops when the rule confirms, or at ``--max-steps`` ("not converged by N").
The test split is never read.

Writes, after every run (several processes may share a scenario: rows are merged under a file lock):

    bench/results/converge-<scenario>.csv          one row per (method, seed, precision, snapshot)
    bench/results/converge-<scenario>-summary.csv  one row per (method, precision): the converged step
                                                   (the larger over seeds; empty unless every seed
                                                   converged), minutes to converge here, best FID
    bench/results/converge-<scenario>.html         per-class FID against step, one panel per method
                                                   (plotly; the Taxonomy page draws the same from the CSV)

The machine and its load average are recorded beside every number.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine  # noqa: E402

from imbagan import catalog, convergence, runs, train  # noqa: E402
from imbagan.config import starting_config  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# The three scenarios of issue 21, named as bench/quality.py names them.
SCENARIOS: dict[str, dict] = {
    "digits-drop-95-3-8": dict(dataset="digits", imbalance="drop", drop=95.0, minority=(3, 8)),
    "mnist-step-ir100": dict(dataset="mnist", imbalance="step", ir=100.0),
    "fashion_mnist-binary-5v7-ir100": dict(dataset="fashion_mnist", imbalance="binary", ir=100.0, minority=(5,),
                                           majority=7),
}
# Minority classes per scenario: `gan` trains one generator for each, so its pace scales with their number.
MINORITY_CLASSES = {"digits-drop-95-3-8": 2, "mnist-step-ir100": 8, "fashion_mnist-binary-5v7-ir100": 1}
ALIASES = {"digits": "digits-drop-95-3-8", "mnist": "mnist-step-ir100", "fashion_mnist": "fashion_mnist-binary-5v7-ir100"}


def _locked_update(path: Path, fn) -> None:
    """Read the CSV, let ``fn`` change the frame, write it back, all under an exclusive lock."""
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        df = pd.read_csv(path) if path.exists() else pd.DataFrame()
        df = fn(df)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        df.to_csv(tmp, index=False)
        os.replace(tmp, path)


def trained_on(cfg: dict, status: dict) -> str:
    """The device a run trained on ("cpu", "cuda"), as its status recorded it (its config's request before that)."""
    return str(status.get("device") or cfg.get("device") or "cpu").split(":")[0]


def curve_rows(d: Path, cfg: dict, status: dict, scenario: str, threads: int,
               where: str | None = None, load: float | None = None) -> list[dict]:
    """The run's quality curve as CSV rows, from its config and status (read once, by the caller); its precision is
    the one it trained at (its status's, "auto" resolved). ``where`` and ``load``: the machine line and load average
    of the machine the run trained on, when that is not this one (a GPU run brought back); by default, this
    machine's."""
    method, seed, device = cfg["method"], int(cfg["seed"]), trained_on(cfg, status)
    precision = status.get("precision") or cfg.get("precision")
    rows, where = [], where or machine(device)
    load = round(os.getloadavg()[0], 2) if load is None else load
    for rec in convergence.read_curve(d):
        row = {"scenario": scenario, "method": method, "seed": seed, "precision": precision, "device": device,
               "step": rec["adv_step"], "seconds": round(rec["train_s"], 2), "quality_s": round(rec["quality_s"], 3),
               "fid_mean": rec["fid_mean"], "fid_minority": rec["fid_minority"], "fid_majority": rec["fid_majority"],
               "class_acc_mean": rec["class_acc_mean"], "class_acc_minority": rec["class_acc_minority"],
               "class_acc_majority": rec["class_acc_majority"], "ssim_mean": rec["ssim_mean"],
               "fid_per_class": json.dumps([None if v is None else round(v, 3) for v in rec["fid"]]),
               "class_acc_per_class": json.dumps([None if v is None else round(v, 3) for v in rec["class_acc"]]),
               "ssim_per_class": json.dumps([None if v is None else round(v, 3) for v in rec["ssim"]]),
               "fid_ref": json.dumps(rec.get("fid_ref")), "run": d.name, "threads": threads,
               "machine": where, "load_avg": load,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        rows.append(row)
    return rows


def summarise(df):
    """One row per (method, precision, device) from the curve rows, under the rule."""
    import pandas as pd

    out = []
    curves = convergence.with_device(df)
    for (method, precision, device), g in curves.groupby(["method", "precision", "device"], sort=False):
        per_seed, minutes, best, acc_at, groups = {}, [], [], [], {"majority": [], "minority": []}
        for seed, s in g.groupby("seed"):
            s = s.sort_values("step")
            steps, fids = s["step"].astype(int).tolist(), s["fid_mean"].astype(float).tolist()
            conv = convergence.converged_step(steps, fids)
            per_seed[int(seed)] = conv
            for grp in groups:  # not the rule: where each group's own mean FID was best, to read beside it
                vals = s[f"fid_{grp}"].astype(float)
                if vals.notna().any():
                    groups[grp].append(f"s{seed}:{int(s['step'].iloc[int(vals.values.argmin())])}")
            best.append(min(f for f in fids if f == f) if any(f == f for f in fids) else math.nan)
            if conv is not None:
                at = s[s["step"] == conv].iloc[0]
                minutes.append(float(at["seconds"]) / 60)
                acc_at.append(float(at["class_acc_mean"]))
        done = all(v is not None for v in per_seed.values()) and per_seed
        out.append({
            "method": method, "precision": precision, "device": device, "seeds": len(per_seed),
            "converged_step": max(per_seed.values()) if done else None,
            "converged_steps": " ".join(f"s{k}:{'-' if v is None else v}" for k, v in sorted(per_seed.items())),
            "max_step": int(g["step"].max()),
            "minutes_to_converge": round(float(sum(minutes) / len(minutes)), 2) if done else None,
            "best_fid": round(float(min(best)), 3), "class_acc_at_converged": round(sum(acc_at) / len(acc_at), 3)
            if done else None,
            "best_step_majority": " ".join(groups["majority"]), "best_step_minority": " ".join(groups["minority"]),
            "rule": convergence.RULE, "machine": g["machine"].iloc[-1], "threads": int(g["threads"].iloc[-1]),
            "load_avg": f"{g['load_avg'].min():.1f}-{g['load_avg'].max():.1f}",
        })
    return pd.DataFrame(out)


def write_outputs(scenario: str) -> None:
    import pandas as pd

    csv = RESULTS / f"converge-{scenario}.csv"
    if not csv.exists():
        return
    df = pd.read_csv(csv)
    summarise(df).to_csv(RESULTS / f"converge-{scenario}-summary.csv", index=False)
    try:
        from ui.convergence_chart import curve_figure
    except ImportError:
        return
    try:
        curve_figure(df, scenario).write_html(RESULTS / f"converge-{scenario}.html", include_plotlyjs="cdn")
    except ImportError:  # plotly is the app's; the GPU machine may lack it
        pass


FAMILY = {"digits-drop-95-3-8": "16px grey", "mnist-step-ir100": "28px grey", "fashion_mnist-binary-5v7-ir100": "28px grey"}


def evidence(summary):
    """Per method and device, the summary row a budget comes from: of the precisions run with two seeds or more, the
    one whose curves went furthest (bf16 on a tie: the curves were planned in it; float32 where a machine without
    native bf16 ran them longer). The convergence rule reads FID, not the precision: the float32 check found the same
    converged step within the seed spread. A GPU's curves are more seeds of the same rule (their steps count); only
    their pace is the GPU's, which the card quotes only where no CPU curve gives one."""
    two = convergence.with_device(summary)
    two = two[two["seeds"].astype(int) >= 2].copy()
    two["_bf16"] = two["precision"] == "bf16"
    best = two.sort_values(["max_step", "_bf16"], ascending=False).drop_duplicates(["method", "device"])
    return best.drop(columns="_bf16").sort_index()


class Pace(NamedTuple):
    """One evidence row's step rate, as a card quotes it."""

    on_cpu: bool
    steps: int  # the row's converged step, or the step its rule points at so far
    seconds_per_step: float
    machine: str  # "<machine>, <threads> thread, <precision>"


def pace_first(p: Pace) -> tuple[bool, int]:
    """Which row's pace a card quotes, largest first: a CPU's (the machine people have) before any GPU's, and among
    those the row of most steps (the curve that set the budget)."""
    return p.on_cpu, p.steps


def card_budgets() -> dict[str, dict]:
    """{method: {family: {"steps", "seconds_per_step", "source", "machine"}}} from every summary CSV: the
    largest converged step over a family's scenarios and devices (the precision whose curves went furthest, see
    :func:`evidence`; every seed converged), a pace (a CPU's where any CPU curve of the family gives one) and the
    CSVs it comes from; where a scenario of the family was still improving at a later step (both seeds run), or
    nothing converged, that step instead, marked ``at_least``. What a card's ``budgets`` literal must hold
    (tests check they agree)."""
    import pandas as pd

    out: dict[str, dict] = {}
    unconverged: dict[tuple[str, str], tuple[int, str]] = {}  # (method, family) -> (steps, scenario)
    # (method, family) -> the evidence row that sets the card's pace (see pace_first).
    paces: dict[tuple[str, str], Pace] = {}

    for scenario, fam in FAMILY.items():
        path = RESULTS / f"converge-{scenario}-summary.csv"
        curves = RESULTS / f"converge-{scenario}.csv"
        if not path.exists():
            continue
        df, cv = pd.read_csv(path), convergence.with_device(pd.read_csv(curves))
        for _, r in evidence(df).iterrows():
            prec, dev = r["precision"], r["device"]
            mine = cv[(cv["method"] == r["method"]) & (cv["precision"] == prec) & (cv["device"] == dev)]
            part = mine[mine["step"] > 0]
            pace = float((part["seconds"] / part["step"]).groupby(part["seed"]).last().mean())
            where, cpu = f"{r['machine']}, {int(r['threads'])} thread, {prec}", dev == "cpu"
            bound = None  # the step the rule points at, where this row is not converged
            if pd.isna(r["converged_step"]) and int(r["seeds"]) >= 2:
                # Not converged on this scenario: the family needs at least, per seed, its converged step or, not
                # confirmed yet, the step the rule points at so far (a later snapshot can only move it later: a
                # curve still improving points at its last snapshot); the larger over seeds.
                done = dict(x.split(":") for x in str(r.get("converged_steps", "")).split() if ":" in x)
                seeds = {int(sd): c.sort_values("step") for sd, c in mine.groupby("seed")}
                bound = max(int(done[f"s{sd}"]) if done.get(f"s{sd}", "-") != "-"
                            else int(convergence.candidate_step(c["step"].tolist(), c["fid_mean"].tolist()))
                            for sd, c in seeds.items()) if seeds else int(r["max_step"])
                if bound > unconverged.get((r["method"], fam), (0, ""))[0]:
                    unconverged[(r["method"], fam)] = (bound, scenario)
            if int(r["seeds"]) >= 2 and (bound is not None or not pd.isna(r["converged_step"])):
                mark = Pace(cpu, int(r["converged_step"] if bound is None else bound), round(pace, 4), where)
                held = paces.get((r["method"], fam))
                if held is None or pace_first(mark) >= pace_first(held):
                    paces[(r["method"], fam)] = mark
            # A budget needs both GAN seeds; a converged step of 0 means adversarial training never beat its
            # start (BAGAN's autoencoder): there is no adversarial budget to give.
            if pd.isna(r["converged_step"]) or int(r["seeds"]) < 2 or int(r["converged_step"]) == 0:
                continue
            steps = int(r["converged_step"])
            b = out.setdefault(r["method"], {}).setdefault(fam, {"steps": 0, "sources": []})
            b["sources"].append(f"bench/results/converge-{scenario}-summary.csv")
            if steps >= b["steps"]:
                b["steps"] = steps
                if r["method"] == "gan":  # one generator per minority class: say how many
                    b["generators"] = MINORITY_CLASSES[scenario]
    # A family where the method was still improving on a scenario, later than any converged step of the family
    # (or where it converged nowhere): its budget is only a lower bound, and the card says so (budgets.note:
    # "at least").
    for (method, fam), (steps, scenario) in unconverged.items():
        b = out.setdefault(method, {}).setdefault(fam, {"steps": 0, "sources": []})
        if steps > b["steps"]:
            b.update(steps=steps, at_least=True, not_converged=scenario)
            b.pop("generators", None)
            b["sources"].append(f"bench/results/converge-{scenario}-summary.csv")
    for (method, fam), p in paces.items():
        if fam in out.get(method, {}):
            out[method][fam].update(seconds_per_step=p.seconds_per_step, machine=p.machine)
    for fams in out.values():
        for b in fams.values():
            b["source"] = ", ".join(dict.fromkeys(b.pop("sources")))
    return out


CARD_COMMENT = "    # Measured by bench/converge.py under imbagan.convergence's rule (bench/converge.py --write-cards).\n"


def write_cards() -> list[str]:
    """Rewrite each method card's ``budgets`` literal from :func:`card_budgets` (the block under CARD_COMMENT,
    added after the class's ``summary`` where a card has none yet, removed where nothing converged).
    Returns the files changed."""
    import pprint
    import re

    from imbagan.methods import METHODS

    changed = []
    want = card_budgets()
    for name, cls in METHODS.items():
        path = Path(sys.modules[cls.__module__].__file__)
        src = path.read_text()
        block = re.compile(r"    # Measured by bench/converge\.py[^\n]*\n    budgets = \{.*?\}\}\n", re.S)
        new = ""
        if name in want:
            lit = pprint.pformat(want[name], width=100, sort_dicts=True).replace("\n", "\n" + " " * 14)
            new = CARD_COMMENT + f"    budgets = {lit}\n"
        if block.search(src):
            out = block.sub(lambda _: new, src, count=1)
        elif new:
            m = re.search(r"(    summary = (?:\(.*?\)|\"[^\n]*\")\n)", src, re.S)
            if m is None:
                raise SystemExit(f"{path}: no summary attribute to put the budgets after")
            out = src[:m.end()] + new + src[m.end():]
        else:
            out = src
        if out != src:
            path.write_text(out)
            changed.append(str(path))
    return changed


def merge_curve(scenario: str, rows: list[dict]) -> None:
    """Replace the (method, seed, precision, device) curve of ``rows`` in the scenario's CSV, under its lock."""
    import pandas as pd

    key = (rows[0]["method"], rows[0]["seed"], rows[0]["precision"], rows[0].get("device", "cpu"))

    def merge(df):
        if len(df):
            df = convergence.with_device(df)
            df = df[~((df["method"] == key[0]) & (df["seed"] == key[1]) & (df["precision"] == key[2])
                      & (df["device"] == key[3]))]
        return pd.concat([df, pd.DataFrame(rows)], ignore_index=True)
    _locked_update(RESULTS / f"converge-{scenario}.csv", merge)


def recover(scenario: str, d: Path, threads: int, where: str | None = None, load: float | None = None) -> None:
    """Merge the curve of a run that was killed before bench/converge.py could (its quality.jsonl survives), or
    of a run brought back from another machine (``where``, ``load``: its machine line and load average, from its
    log): the summary then judges what that run showed."""
    cfg = json.loads((d / "config.json").read_text())
    st = runs.read_status(d)
    if where is None and trained_on(cfg, st) == "cuda":
        raise SystemExit(f"{d} trained on a GPU: say which with --recover-machine (its log's first line names it)")
    rows = curve_rows(d, cfg, st, scenario, threads, where, load)
    if not rows:
        raise SystemExit(f"{d} has no quality curve to recover")
    merge_curve(scenario, rows)
    print(f"recovered {len(rows)} snapshots of {cfg['method']} seed {cfg['seed']} ({rows[0]['precision']}) from {d}, "
          f"to step {rows[-1]['step']}")


def run_one(scenario: str, method: str, seed: int, a, root: Path) -> None:
    # A checkpoint at every snapshot: a curve killed part way (hours for gan on MNIST) resumes from its last
    # snapshot with `imbagan resume` and is merged with --recover, instead of starting again.
    kw = dict(SCENARIOS[scenario], data_root=a.data_root, method=method, seed=seed, steps=a.max_steps,
              sample_every=a.every, checkpoint_every=a.every, tick_every=25, quality_curve="on",
              stop_when="steps" if a.run_to_max else "converged", precision=a.precision, device=a.device)
    cfg = starting_config(**kw)
    d = runs.create(cfg, root)
    t = time.perf_counter()
    train.train(d, log=lambda s: print(f"  [{method} s{seed}] {s}", flush=True))
    status = runs.read_status(d)
    rows = curve_rows(d, cfg.to_dict(), status, scenario, a.threads)
    merge_curve(scenario, rows)
    conv = status.get("converged_step")
    print(f"{scenario} {method} seed {seed} ({rows[0]['precision']}): "
          f"{'converged at ' + str(conv) if conv is not None else 'not converged by ' + str(rows[-1]['step'])} steps, "
          f"best FID {min(r['fid_mean'] for r in rows if r['fid_mean'] is not None):.2f}, "
          f"{time.perf_counter() - t:.0f} s, load {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="digits", help=f"one of {', '.join(SCENARIOS)} (or {', '.join(ALIASES)})")
    ap.add_argument("--methods", nargs="+", default=list(catalog.method_names()))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--max-steps", type=int, default=10_000, help="adversarial steps at most")
    ap.add_argument("--every", type=int, default=250, help="adversarial steps between snapshots (250-500)")
    ap.add_argument("--precision", default="bf16", choices=("auto", "fp32", "bf16"))
    ap.add_argument("--run-to-max", action="store_true",
                    help="train every run to --max-steps instead of stopping once the rule confirms (issue 21 §5: "
                         "BAGAN at least as long as the slowest converging other method)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", default=None, help="keep the run directories here (default: a temporary folder)")
    ap.add_argument("--summary-only", action="store_true", help="rebuild the summary and plot from the CSV")
    ap.add_argument("--recover", nargs="+", default=None, metavar="RUN_DIR",
                    help="merge the curves of runs that were killed before they ended (their quality.jsonl) into the "
                         "scenario's CSV, and rebuild the summary")
    ap.add_argument("--recover-machine", default=None, metavar="TEXT",
                    help="with --recover, for runs that trained on another machine (a GPU's): its machine line, as "
                         "its log's first line gives it")
    ap.add_argument("--recover-load", type=float, default=None, help="with --recover-machine: its load average")
    ap.add_argument("--write-cards", action="store_true",
                    help="rewrite each method card's budgets literal from every summary CSV, and exit")
    ap.add_argument("--print-budgets", action="store_true",
                    help="print each method card's budgets literal from every summary CSV, and exit")
    a = ap.parse_args()
    if a.write_cards:
        print("\n".join(write_cards()) or "every card already holds its summary's budgets")
        return
    if a.print_budgets:
        for method, fams in card_budgets().items():
            print(f"{method}:\n    budgets = {fams!r}")
        return
    scenario = ALIASES.get(a.scenario, a.scenario)
    if scenario not in SCENARIOS:
        raise SystemExit(f"Unknown scenario {a.scenario!r}; choose one of {', '.join(SCENARIOS)}.")
    for d in a.recover or []:
        recover(scenario, Path(d), a.threads, a.recover_machine, a.recover_load)
    if not a.summary_only and not a.recover:
        import torch

        torch.set_num_threads(a.threads)
        os.environ["IMBAGAN_THREADS"] = str(a.threads)
        root = Path(a.runs) if a.runs else Path(tempfile.mkdtemp(prefix="imbagan-converge-"))
        print(f"# {scenario}: methods {a.methods}, seeds {a.seeds}, ≤ {a.max_steps} steps, snapshot every "
              f"{a.every}, {a.precision}; {machine(a.device)}, {a.threads} thread(s), load "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; rule: {convergence.RULE}", flush=True)
        for method in a.methods:
            for seed in a.seeds:
                run_one(scenario, method, seed, a, root)
                write_outputs(scenario)
    write_outputs(scenario)
    print(f"wrote {RESULTS / f'converge-{scenario}-summary.csv'}")


if __name__ == "__main__":
    main()
