"""Cells -> the table: one line per (setting, row, protocol) with mean ± std over repeats, the
published number, the difference, and how the number was selected.

``collect`` reads a reproduction folder (it works while jobs are still running: missing cells show
as pending); ``write`` saves table.csv and table.md, the markdown in the paper's shape (rows = the
paper's rows, columns = its settings), one table per protocol.

``verdicts`` judges each GAN row of the honest protocol as the evaluation does (imbagan.verdict):
against the untreated classifier (CN, the ``imbalanced`` condition) and the best cheap fix measured in
the same setting, in ACSA and minority recall, repeat by repeat (a repeat's GAN and baselines share
its data and classifier seed), each difference with its standard error over the repeats and the rule's
word. ``write`` saves it as verdict.csv and under the honest table in table.md.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from imbagan import runs, verdict
from imbagan.reproduce.spec import PROTOCOL_TITLES, PROTOCOLS

COLUMNS = ["setting", "setting_title", "row", "row_label", "protocol", "selection", "test_selected", "n", "repeats", "mean", "std",
           "published", "delta", "values", "selected_steps", "state", "note"]


def _jobs_by_cell(jobs: list[dict], spec_rows: list[dict]) -> dict[tuple, list[str]]:
    """(setting, row, protocol) -> ids of the jobs that produce it (one per repeat)."""
    out: dict[tuple, list[str]] = {}
    for j in jobs:
        if j["kind"] == "cn":
            out.setdefault((j["setting"], j["row"], "paper"), []).append(j["id"])
            continue
        if j.get("paper"):
            out.setdefault((j["setting"], j["row"], "paper"), []).append(j["id"])
        if j["kind"] == "baseline":  # all of the spec's classifier rows; show those the folder's spec has
            rows = {r["key"] for r in spec_rows}
            for row in j.get("conditions") or {}:
                if row in rows:
                    out.setdefault((j["setting"], row, "honest"), []).append(j["id"])
            continue
        for row in j.get("conditions") or {}:
            out.setdefault((j["setting"], row, "honest"), []).append(j["id"])
    return out


def collect(folder: Path) -> pd.DataFrame:
    """The table so far, from spec.json, jobs.json and cells/ (no torch)."""
    from imbagan.reproduce import store

    spec = runs.read_json(folder / "spec.json", {}) or {}
    jobs = store.read_jobs(folder)
    producers = _jobs_by_cell(jobs, spec.get("rows", []))
    published = {(p["row"], p["setting"]): p["value"] for p in spec.get("published", [])}
    cells = {j["id"]: store.read_cell(folder, j) for j in jobs}
    by_id = {j["id"]: j for j in jobs}
    headless = {j["id"]: j["config"]["method"] for j in jobs
                if j["kind"] == "gan" and j.get("paper") and not j.get("head")}
    recs = []
    for s in spec.get("settings", []):
        for r in spec.get("rows", []):
            pub = published.get((r["key"], s["key"]))
            protos = [p for p in spec.get("protocols", []) if (s["key"], r["key"], p) in producers]
            if r["kind"] == "published" or not protos:
                if pub is None and r["kind"] != "published":
                    continue
                recs.append({"setting": s["key"], "setting_title": s["title"], "row": r["key"], "row_label": r["label"],
                             "protocol": "published", "selection": "", "test_selected": None, "n": 0, "repeats": 0, "mean": math.nan,
                             "std": math.nan, "published": pub, "delta": math.nan, "values": "", "selected_steps": "",
                             "state": "published only", "note": r.get("note") or "not implemented in imbagan"})
                continue
            for p in protos:
                ids = producers[(s["key"], r["key"], p)]
                vals, steps, notes, states = [], [], [], []
                for jid in ids:
                    c = cells.get(jid)
                    if c is None and p == "paper" and jid in headless:  # known before it runs
                        notes.append(f"{headless[jid]}'s discriminator has no class head")
                        continue
                    if c is None:
                        states.append(store.job_state(folder, by_id[jid]).get("state", "queued"))
                        continue
                    v = (c.get("values", {}).get(r["key"]) or {}).get(p) or {}
                    if v.get("value") is None:
                        notes.append(v.get("note") or "no value")
                        continue
                    vals.append(float(v["value"]))
                    if v.get("selected_step") is not None:
                        steps.append(str(v["selected_step"]))
                n = len(vals)
                mean = float(np.mean(vals)) if n else math.nan
                std = float(np.std(vals, ddof=1)) if n > 1 else math.nan
                running = sum(st == "running" for st in states)
                state = (f"{n}/{len(ids)} done" + (f", {running} running" if running else "")
                         + (f", {len(notes)} without a value" if notes else ""))
                recs.append({"setting": s["key"], "setting_title": s["title"], "row": r["key"], "row_label": r["label"],
                             "protocol": p, "selection": PROTOCOLS[p], "test_selected": p == "paper", "n": n, "repeats": len(ids), "mean": mean,
                             "std": std, "published": pub, "delta": mean - pub if pub is not None and n else math.nan,
                             "values": " ".join(f"{v:.2f}" for v in vals), "selected_steps": " ".join(steps),
                             "state": state, "note": "; ".join(sorted(set(notes)))})
    return pd.DataFrame(recs, columns=COLUMNS)


VERDICT_COLUMNS = ["setting", "setting_title", "row", "row_label", "repeats", "best_baseline", "best_baseline_label",
                   *(f"{tag}_{m}_{part}" for tag in ("vs_imbalanced", "vs_best") for m in verdict.METRICS
                     for part in ("diff", "se", "word")), "verdict", "text"]
# verdict.csv's differences and standard errors are in points (percent), as the tables' numbers.
VERDICT_SHOWN = {"row_label": "GAN", "best_baseline_label": "best baseline", "vs_best_acsa": "Δ ACSA vs best",
                 "vs_best_minority_recall": "Δ minority recall vs best", "vs_imbalanced_acsa": "Δ ACSA vs CN",
                 "vs_imbalanced_minority_recall": "Δ minority recall vs CN", "verdict": "verdict"}


def _labels(spec: dict) -> dict[str, str]:
    """Row key or classifier condition -> the row's label (the full spec's, for rows a narrowing left out)."""
    from imbagan.reproduce import SPECS

    rows = list(spec.get("rows", []))
    full = SPECS.get(spec.get("name"))
    if full is not None:
        rows += [{"key": r.key, "label": r.label, "condition": r.condition} for r in full.rows]
    out: dict[str, str] = {}
    for r in rows:
        out.setdefault(r["key"], r["label"])
        if r.get("condition"):
            out.setdefault(r["condition"], r["label"])
    return out


def verdicts(folder: Path) -> pd.DataFrame:
    """One line per (setting, GAN row) measured under the honest protocol with something to compare with."""
    from imbagan.reproduce import store

    spec = runs.read_json(folder / "spec.json", {}) or {}
    if "honest" not in spec.get("protocols", []):
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    labels = _labels(spec)
    gan_rows = [r["key"] for r in spec.get("rows", []) if r.get("kind") == "gan"]
    jobs = store.read_jobs(folder)
    recs = []
    for s in spec.get("settings", []):
        mine = [j for j in jobs if j["setting"] == s["key"] and j["kind"] in ("gan", "baseline")]
        n_rep = max((j["repeat"] for j in mine), default=-1) + 1
        # per_seed[name][metric][repeat], in fractions as the evaluation's; a GAN by its row key, a
        # baseline by its evaluation condition (imbalanced, logit_adjust, full, ...).
        per_seed: dict[str, dict[str, list]] = {}
        for j in mine:
            cell = store.read_cell(folder, j)
            for row, protos in ((cell or {}).get("values") or {}).items():
                h = (protos or {}).get("honest") or {}
                if h.get("value") is None or all(h.get(m) is None for m in verdict.METRICS):
                    continue  # nothing measured, or a cell from before cells kept ACSA and minority recall
                name = row if j["kind"] == "gan" else (j.get("conditions") or {}).get(row, row)
                slot = per_seed.setdefault(name, {m: [None] * n_rep for m in verdict.METRICS})
                for m in verdict.METRICS:
                    if h.get(m) is not None:
                        slot[m][j["repeat"]] = h[m] / 100.0
        gans = [r for r in gan_rows if r in per_seed]
        for row, cv in verdict.verdicts(per_seed, gans=gans).items():
            if not cv["vs"]:
                continue
            best = cv["best_baseline"]
            rec = {"setting": s["key"], "setting_title": s["title"], "row": row, "row_label": labels.get(row, row),
                   "repeats": sum(x is not None for x in per_seed[row]["acsa"]), "best_baseline": best,
                   "best_baseline_label": labels.get(best, best) if best else None,
                   "verdict": f"{verdict.headline(cv)} vs {labels.get(best, best) if best in cv['vs'] else 'CN'}",
                   "text": cv["text"]}
            for tag, ref in (("vs_imbalanced", verdict.UNTREATED), ("vs_best", best)):
                for m in verdict.METRICS:
                    j = (cv["vs"].get(ref) or {}).get(m) if ref else None
                    j = j or {}
                    rec[f"{tag}_{m}_diff"] = 100 * j["diff"] if j.get("diff") is not None else math.nan
                    rec[f"{tag}_{m}_se"] = 100 * j["se"] if j.get("se") is not None else math.nan
                    rec[f"{tag}_{m}_word"] = j.get("word")
            recs.append(rec)
    return pd.DataFrame(recs, columns=VERDICT_COLUMNS)


def verdict_cell(rec, tag: str, metric: str) -> str:
    """'-4.0 ± 0.3 (worse)', in points; '+2.0 (one seed: no spread)' for one repeat; '—' without a reference."""
    word = rec[f"{tag}_{metric}_word"]
    if not isinstance(word, str):
        return "—"
    d, se = rec[f"{tag}_{metric}_diff"], rec[f"{tag}_{metric}_se"]
    if d is None or math.isnan(d):
        return "—"
    return verdict.cell({"diff": d / 100, "se": None if se is None or math.isnan(se) else se / 100, "word": word})


def verdict_display(vdf: pd.DataFrame) -> pd.DataFrame:
    """The verdict lines as the page and table.md show them: one text cell per difference."""
    out = pd.DataFrame({"setting": vdf["setting_title"], "GAN": vdf["row_label"], "repeats": vdf["repeats"],
                        "best baseline": vdf["best_baseline_label"].astype(object).fillna("none measured")})
    for tag in ("vs_best", "vs_imbalanced"):
        for m in verdict.METRICS:
            out[VERDICT_SHOWN[f"{tag}_{m}"]] = [verdict_cell(r, tag, m) for _, r in vdf.iterrows()]
    out["verdict"] = vdf["verdict"]
    return out.reset_index(drop=True)


VERDICT_NOTE = ("Each GAN row of the honest protocol against CN (the untreated classifier) and the best cheap fix "
                "the setting's baseline jobs measured (highest mean ACSA; not CN, not the full set; possibly a "
                "row not selected for the table above): the difference "
                "in points, repeat by repeat, mean ± standard error over the repeats. The rule: " + verdict.RULE)


def _fmt(x, digits: int = 2) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def cell_text(rec) -> str:
    """'98.10 ± 0.20 (pub 97.93, +0.17)' or '—' for a cell not measured yet."""
    if rec["protocol"] == "published":
        return f"pub {_fmt(rec['published'])}; ours —" if rec["published"] is not None else "—"
    if not rec["n"]:
        ours = "n/a" if rec["note"] else "…"  # no value possible, or not measured yet
    else:
        ours = _fmt(rec["mean"]) + (f" ± {_fmt(rec['std'])}" if rec["n"] > 1 else "")
    pub = rec["published"]
    if pub is None or (isinstance(pub, float) and math.isnan(pub)):
        return ours
    delta = f", {rec['delta']:+.2f}" if rec["n"] else ""
    return f"{ours} (pub {_fmt(pub)}{delta})"


def markdown(folder: Path, df: pd.DataFrame | None = None) -> str:
    spec = runs.read_json(folder / "spec.json", {}) or {}
    df = collect(folder) if df is None else df
    settings = [s["title"] for s in spec.get("settings", [])]
    out = [f"# {spec.get('title', folder.name)}", "",
           f"Published: {spec.get('paper', '')}, {spec.get('where', '')}. Metric: {spec.get('metric')} (%). "
           f"Budget: {spec.get('budget')} ({spec.get('budget_note', '')}). Repeats: {spec.get('repeats')}; "
           "ours = mean ± std over repeats (pub = published, then ours − published).", ""]
    for p in spec.get("protocols", []):
        sub = df[df["protocol"].isin([p, "published"])]
        if sub.empty:
            continue
        out += [f"## {PROTOCOL_TITLES[p]}: {PROTOCOLS[p]}", ""]
        if p == "paper" and spec.get("paper_protocol"):
            out += [spec["paper_protocol"], ""]
        if p == "honest" and spec.get("metric") == "class_accuracy":
            out += ["A reference classifier trained on the full real training set, for a fixed budget, labels "
                    "generated images of the minority class; the value is the share it gives the intended class.", ""]
        elif p == "honest":
            out += ["An independent classifier (imbagan's evaluation) trained for a fixed budget declared before "
                    "training, tested once on the untouched, balanced test split; nothing is selected on it.", ""]
        out += ["| | " + " | ".join(settings) + " |", "|---|" + "---|" * len(settings)]
        for r in spec.get("rows", []):
            line = []
            for s in spec.get("settings", []):
                hit = sub[(sub["row"] == r["key"]) & (sub["setting"] == s["key"])]
                own = hit[hit["protocol"] == p]
                line.append(cell_text((own if not own.empty else hit).iloc[0]) if not hit.empty else "")
            if any(line):
                out.append(f"| {r['label']} | " + " | ".join(line) + " |")
        out.append("")
        if p == "honest":
            out += _verdict_markdown(folder)
    for n in spec.get("notes", []):
        out.append(f"- {n}")
    return "\n".join(out) + "\n"


def _verdict_markdown(folder: Path) -> list[str]:
    vdf = verdicts(folder)
    if vdf.empty:
        return []
    shown = verdict_display(vdf)
    out = ["### Verdict: did the GAN beat the cheapest fix?", "", VERDICT_NOTE, "",
           "| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    out += ["| " + " | ".join(str(v) for v in r) + " |" for r in shown.itertuples(index=False)]
    return out + [""]


def write(folder: Path) -> pd.DataFrame:
    df = collect(folder)
    vdf = verdicts(folder)
    tmp = folder / f".verdict.csv.{os.getpid()}.tmp"
    vdf.to_csv(tmp, index=False)
    os.replace(tmp, folder / "verdict.csv")
    tmp = folder / f".table.csv.{os.getpid()}.tmp"
    df.to_csv(tmp, index=False)
    os.replace(tmp, folder / "table.csv")
    tmp = folder / f".table.md.{os.getpid()}.tmp"
    tmp.write_text(markdown(folder, df))
    os.replace(tmp, folder / "table.md")
    return df
