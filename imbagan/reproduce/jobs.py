"""A reproduction's jobs: how a spec expands into them, and how one job is carried out.

A job is one (setting, row, repeat). Kinds:

  gan       train the row's method into a normal run directory (the app's pages show it), probe its
            D for the paper protocol (``protocols.HeadProbe``), then run imbagan's evaluation of its
            GAN-balanced set for the honest one.
  baseline  the honest protocol's classifier rows of a (setting, repeat): imbagan's evaluation of the
            imbalanced = CN, oversample = Os+CN, full, ... conditions, which need no GAN. It runs on a
            run-shaped folder (config.json, no checkpoint) inside the reproduction folder, so the app's
            run list does not show an untrained run; the numbers are in its eval/.
  cn        the paper protocol's CN / Os+CN: the discriminator network trained as a classifier. No
            GAN, so no run directory; its probes go to the reproduction folder.

A job's definition does not depend on which other rows were selected, so a narrower or wider re-run
reuses every cell it shares with an earlier one.

Every job is fully resolved when expanded (its TrainConfig and EvalConfig as dicts), so a worker
needs nothing but the job to do it, here or on a Ray node.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import socket
import time
from pathlib import Path
from typing import Callable

from imbagan import catalog, cores, runs
from imbagan.reproduce.spec import CLASS_HEADS, Budget, Spec


def _steps(cfg_kw: dict, budget: Budget) -> int:
    """The budget's GAN steps: the method's measured budget where the budget asks for it and one exists;
    with ``train["epochs"]``, that many passes over the imbalanced set (the official AGGAN script trains
    50 epochs of its batch-50 loader)."""
    epochs = budget.train.get("epochs")
    if budget.measured_steps and not epochs:
        from imbagan import budgets

        measured = budgets.default_steps(cfg_kw["method"], cfg_kw.get("dataset", "digits"), cfg_kw.get("image_size"),
                                         cfg_kw.get("channels"))
        return measured or budget.steps
    if not epochs:
        return budget.steps
    from imbagan.config import TrainConfig
    from imbagan.splits import imbalance_preview

    _, _, kept = imbalance_preview(TrainConfig.from_dict(cfg_kw))
    return int(epochs) * math.ceil(sum(kept) / budget.batch_size)


def train_config(spec: Spec, setting_key: str, method: str, budget: Budget, repeat: int, *,
                 data_root: str | None, device: str, probe: bool):
    """The run's TrainConfig: the method's paper defaults, then the setting, then the budget."""
    from imbagan.config import TrainConfig

    kw = dict(catalog.card(method).paper_defaults)
    kw.update(spec.setting(setting_key).config)
    kw.update(method=method, batch_size=budget.batch_size, width=budget.width, seed=repeat, device=device,
              data_root=data_root)
    kw.update({k: v for k, v in budget.train.items() if k != "epochs"})
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()}
    steps = _steps(kw, budget)
    every = budget.probe_every if probe else max(1, steps // 5)
    kw.update(steps=steps, checkpoint_every=every, tick_every=max(1, min(25, every)),
              sample_every=max(every, steps // 10))
    return TrainConfig.from_dict(kw)


def expand(spec: Spec, budget_name: str, repeats: int, *, data_root: str | None = None,
           device: str = "auto", full_rows: tuple = ()) -> list[dict]:
    """Every job of the (narrowed) spec, in an order that fills the table setting by setting.

    ``full_rows``: the rows of the spec before narrowing (the baseline job always covers all of its
    classifier rows); default: the spec's own rows."""
    full_rows = full_rows or spec.rows
    from imbagan import conditions, evaluate

    budget = spec.budgets[budget_name]
    paper, honest = "paper" in spec.protocols, "honest" in spec.protocols
    gan_rows = [r for r in spec.rows if r.kind == "gan"]
    cls_rows = [r for r in spec.rows if r.kind == "classifier"]
    honest_cls = [r for r in cls_rows if honest and r.condition]
    known = set(conditions.CONDITIONS)

    def eval_config(conds: tuple[str, ...], rep: int) -> dict:
        # One classifier seed per repeat (seed = repeat): our spread is over whole repeats (data, GAN and
        # classifier), not over classifier seeds alone.
        return evaluate.EvalConfig(classifier=budget.eval_classifier, width=budget.eval_width,
                                   epochs=budget.eval_epochs, seed=rep, repeats=1, tsne_points=0,
                                   quality_images=budget.quality_images, conditions=conds, device=device).to_dict()

    jobs = []
    for s in spec.settings:
        for rep in range(repeats):
            for r in gan_rows:
                head = CLASS_HEADS.get(r.method) if paper else None
                cfg = train_config(spec, s.key, r.method, budget, rep, data_root=data_root, device=device,
                                   probe=head is not None)
                jobs.append(_sealed({"id": f"{s.key}.{r.key}.r{rep}", "kind": "gan", "setting": s.key, "row": r.key,
                             "repeat": rep, "config": cfg.to_dict(), "head": head,
                             "eval": eval_config(("gan",), rep) if honest else None,
                             "conditions": {r.key: "gan"} if honest else {}, "unavailable": {},
                             "metric": spec.metric, "paper": paper}))
            if honest_cls:
                # One job for all classifier rows of the full spec, whichever were selected: its definition
                # (and so its cell) does not change when a re-run narrows or widens the rows.
                all_cls = {r.key: r.condition for r in full_rows if r.kind == "classifier" and r.condition}
                unavailable = {k: f"the evaluation has no condition {c!r} in this version of imbagan"
                               for k, c in all_cls.items() if c not in known}
                conds = tuple(dict.fromkeys(c for k, c in all_cls.items() if k not in unavailable))
                cfg = train_config(spec, s.key, "acgan", budget, rep, data_root=data_root, device=device, probe=False)
                jobs.append(_sealed({"id": f"{s.key}.baselines.r{rep}", "kind": "baseline", "setting": s.key,
                             "row": "baselines", "repeat": rep, "config": cfg.to_dict(),
                             "eval": eval_config(conds, rep), "conditions": all_cls, "unavailable": unavailable,
                             "metric": spec.metric, "paper": False}))
            for r in cls_rows:
                if not (paper and r.paper):
                    continue
                cfg = train_config(spec, s.key, "acgan", budget, rep, data_root=data_root, device=device, probe=True)
                jobs.append(_sealed({"id": f"{s.key}.{r.key}.r{rep}", "kind": "cn", "setting": s.key, "row": r.key,
                             "repeat": rep, "config": cfg.to_dict(), "oversample": r.oversample,
                             "steps": cfg.steps, "probe_every": budget.probe_every, "metric": spec.metric}))
    return jobs


def fingerprint(obj) -> str:
    """A short hash of a job's definition: a cell counts only for the job it was computed for."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _changed(d: dict | None, cls) -> dict | None:
    """The fields of a config dict that differ from the dataclass's defaults: a field added to imbagan
    later, with a default, leaves the fingerprints of existing jobs as they were."""
    if d is None:
        return None
    d, base = json.loads(json.dumps(d)), json.loads(json.dumps(cls().to_dict()))
    if "options" in base:
        # TrainConfig: compared with the method's settings beside the fields, as every job was fingerprinted
        # before the settings moved to the cards, so a finished cell stays finished.
        def flat(c: dict, opts: dict) -> dict:
            return {**{k: v for k, v in c.items() if k != "options"}, **opts}
        d = flat(d, d.get("options") or {})
        base = flat(base, json.loads(json.dumps({n: s["default"] for n, s in catalog.setting_specs().items()})))
    return {k: v for k, v in d.items() if base.get(k, object()) != v}


def _sealed(job: dict) -> dict:
    """The job with its fingerprints: ``hash`` covers everything (the cell), ``train_hash`` the run's
    TrainConfig (a run is continued only for the same config; a new evaluation budget reuses it)."""
    from imbagan.config import TrainConfig
    from imbagan.evaluate import EvalConfig

    key = {k: v for k, v in job.items() if k not in ("hash", "train_hash", "config", "eval")}
    key.update(config=_changed(job["config"], TrainConfig), eval=_changed(job.get("eval"), EvalConfig))
    job["train_hash"] = fingerprint(key["config"])
    job["hash"] = fingerprint(key)
    return job


# --- carrying out one job ----------------------------------------------------------------------
def _honest_value(metrics: dict, condition: str, metric: str) -> dict:
    if condition not in (metrics.get("conditions") or {}):
        why = (metrics.get("skipped") or {}).get(condition, "not evaluated")
        return {"value": None, "note": why}
    m = metrics["conditions"][condition]
    out = {"accuracy": 100.0 * m["accuracy"], "acsa": 100.0 * m["acsa"],
           "minority_recall": 100.0 * m["minority"]["recall"] if m["minority"]["recall"] is not None else None,
           "selection": "none: fixed budget, untouched test split"}
    if metric == "class_accuracy":
        # BAGAN Fig. 7: the reference classifier's accuracy on generated images of the minority class.
        q = metrics.get("quality") or {}
        name = metrics["run"]["classes"][metrics["run"]["minority"]]
        row = next((r for r in q.get("per_class", []) if r["class"] == name), None)
        v = row.get("class_accuracy") if row else None
        out["value"] = 100.0 * v if v is not None else None
        if v is None:
            out["note"] = "no generated-image quality"
    else:
        out["value"] = out[metric]
    return out


def _same_eval(saved: dict | None, wanted: dict) -> bool:
    return saved is not None and json.loads(json.dumps(saved)) == json.loads(json.dumps(wanted))


def run_gan(job: dict, state, root: Path, log: Callable[[str], None] = print) -> dict:
    """Train (or resume) the job's run, probe it, evaluate it; returns the cell's values."""
    from imbagan.batches import resolve_device
    from imbagan.config import TrainConfig
    from imbagan.reproduce import protocols as P
    from imbagan.train import StopRequested, train

    st = state.read()
    run_id = st.get("run_id") if st.get("train_hash") == job["train_hash"] else None  # same config only
    d = root / run_id if run_id else None
    if d is None or not (d / "config.json").is_file():
        d = runs.create(TrainConfig.from_dict(job["config"]), root)
        state.update(run_id=d.name, train_hash=job["train_hash"])
        log(f"{job['id']}: new run {d.name}")
    else:
        log(f"{job['id']}: continuing run {d.name}")
    cfg = TrainConfig.load(d / "config.json")
    device = resolve_device(cfg.device)  # train() and evaluate() size their threads to the free cores (cores.py)
    probe = P.HeadProbe(cfg, job["head"], d / P.PROBE_FILE, device) if job.get("head") else None
    if runs.read_json(d / "status.json", {}).get("state") != "done":
        flag = P.ProbingStop(d / "checkpoint.pt", probe)
        old = signal.signal(signal.SIGTERM, lambda *_: flag.request())
        status = runs.StatusWriter(d)
        status.update(state="running", pid=os.getpid(), error=None)
        status.start_heartbeat()
        try:
            result = train(d, resume=True, should_stop=flag, status=status, log=log)
        except StopRequested:
            result = "stopped"
        except Exception as e:
            status.update(state="failed", error=f"{type(e).__name__}: {e}")
            raise
        finally:
            status.close()
            signal.signal(signal.SIGTERM, old)
        if result != "done":
            status.update(state="stopped")
            raise InterruptedError(f"{job['id']}: training stopped at a checkpoint; run again to continue")
    values: dict = {k: {} for k in (job.get("conditions") or {job["row"]: None})}
    values.setdefault(job["row"], {})
    if job.get("paper"):
        if probe is not None:
            probe(d / "checkpoint.pt")  # the last checkpoint, if the loop ended before probing it
            values[job["row"]]["paper"] = P.best_of(P.read_probes(d / P.PROBE_FILE)) or {
                "value": None, "note": "no probe"}
        else:
            values[job["row"]]["paper"] = {"value": None, "note": f"{cfg.method}'s discriminator has no class head"}
    if job.get("eval"):
        from imbagan import evaluate

        ev = evaluate.EvalConfig.from_dict(job["eval"])
        metrics = runs.read_json(d / "eval" / "metrics.json")
        done = runs.read_json(d / "eval" / "status.json", {}).get("state") == "done"
        if not (done and metrics and _same_eval(metrics.get("config"), ev.to_dict())):
            metrics = evaluate.evaluate_run(d, ev, log=log)
        for row, cond in job["conditions"].items():
            if row in job.get("unavailable", {}):
                values[row]["honest"] = {"value": None, "note": job["unavailable"][row]}
            else:
                values[row]["honest"] = _honest_value(metrics, cond, job["metric"])
    return {"run_id": d.name, "values": values}


def run_baseline(job: dict, folder: Path, log: Callable[[str], None] = print) -> dict:
    """The honest protocol's classifier rows: imbagan's evaluation on a run-shaped folder without a GAN."""
    from imbagan import evaluate
    from imbagan.config import TrainConfig

    d = folder / "baselines" / job["id"]
    d.mkdir(parents=True, exist_ok=True)
    if runs.read_json(d / "config.json") != json.loads(json.dumps(job["config"])):
        TrainConfig.from_dict(job["config"]).save(d / "config.json")
    metrics = evaluate.evaluate_run(d, evaluate.EvalConfig.from_dict(job["eval"]), log=log)
    values = {row: {"honest": {"value": None, "note": job["unavailable"][row]} if row in job["unavailable"]
                    else _honest_value(metrics, cond, job["metric"])} for row, cond in job["conditions"].items()}
    return {"run_id": None, "values": values}


def run_cn(job: dict, state, folder: Path, log: Callable[[str], None] = print, should_stop=lambda: False) -> dict:
    from imbagan.batches import resolve_device
    from imbagan.config import TrainConfig
    from imbagan.reproduce import protocols as P

    threads = cores.ThreadPolicy()  # $IMBAGAN_THREADS, else the free cores, re-checked as it trains

    def stop() -> bool:
        threads.check()  # cheap: it reads /proc/stat at most twice a second
        return should_stop()
    cfg = TrainConfig.from_dict(job["config"])
    out = folder / "jobs" / f"{job['id']}.probe.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    log(f"{job['id']}: D as a classifier{' on class-balanced batches' if job['oversample'] else ''}, "
        f"{job['steps']} steps")
    probes = P.train_d_classifier(cfg, job["steps"], job["probe_every"], job["oversample"], out,
                                  resolve_device(cfg.device), stop)
    return {"run_id": None, "values": {job["row"]: {"paper": P.best_of(probes)}}}


class JobState:
    """jobs/<id>.json: {"state", "pid", "run_id", "host", "started", "error"}, replaced atomically."""

    def __init__(self, folder: Path, job_id: str):
        self.path = folder / "jobs" / f"{job_id}.json"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def read(self) -> dict:
        return runs.read_json(self.path, {}) or {}

    def update(self, **kw) -> None:
        st = self.read()
        st.update(kw)
        runs.write_json_atomic(self.path, st)


def execute(job: dict, folder: Path, root: Path, log: Callable[[str], None] = print) -> dict:
    """Carry out one job; returns its cell (what ``store.write_cell`` saves). ``folder`` holds the job's
    state (its run id, to resume); on a Ray node without the driver's disk it is a local stand-in."""
    state = JobState(folder, job["id"])
    state.update(state="running", pid=os.getpid(), host=socket.gethostname(), started=time.time(), error=None)
    t = time.time()
    try:
        if job["kind"] == "gan":
            cell = run_gan(job, state, root, log)
        elif job["kind"] == "baseline":
            cell = run_baseline(job, folder, log)
        else:
            stop = {"flag": False}
            old = signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
            try:
                cell = run_cn(job, state, folder, log, lambda: stop["flag"])
            finally:
                signal.signal(signal.SIGTERM, old)
    except BaseException as e:
        state.update(state="stopped" if isinstance(e, (InterruptedError, KeyboardInterrupt)) else "failed",
                     error=f"{type(e).__name__}: {e}", pid=None)
        raise
    cell.update(job=job["id"], hash=job["hash"], setting=job["setting"], row=job["row"], repeat=job["repeat"], kind=job["kind"],
                wall_s=time.time() - t, finished=time.time(), host=socket.gethostname())
    state.update(state="done", pid=None, wall_s=cell["wall_s"])
    return cell
