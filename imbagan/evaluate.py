"""Did balancing help, for which classes, and are the generated images any good?

For a trained run this trains the same classifier on several versions of its training set, the conditions
of imbagan.conditions (the imbalanced set, the cheap fixes, the GAN top-up, the balanced ceiling; listed with
their descriptions by ``python -m imbagan evaluate --help``), and tests each on the run's untouched test split
(BAGAN §5.2, AGGAN §5.2). It then judges the generated images with a reference classifier trained on the full
real set (the "full" condition's): class accuracy, SSIM diversity and memorisation, domain FID (BAGAN §5.1),
and draws AGGAN §5.3's t-SNE of features before and after balancing. Everything goes to RUN/eval/
(imbagan.evalfiles).

It reads as named stages (``_evaluate``): plan (the splits, the classifier budget and seeds, fixed before any
training), fit_baselines (while the GAN may still train), wait_for_gan, fit_gan_sets, score (test split,
spread over seeds, verdict) and judge_images (quality and t-SNE). Like training it runs in its own process
(``start_evaluation``). The pieces: imbagan.conditions builds the training sets, imbagan.classifiers trains
and applies the classifiers, imbagan.quality computes the numbers, imbagan.verdict says what they mean.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from imbagan import cores, evalfiles, runs, verdict
from imbagan.conditions import LA_TAU, POST_HOC, Context, TrainSet, adjust_logits, training_set
from imbagan.evalconfig import EvalConfig, budget_steps, repeats_for



class EvaluationStopped(Exception):
    """Raised by the evaluation process's SIGTERM handler."""


# --- the evaluation ----------------------------------------------------------------------------
def evaluate_run(run_dir: str | os.PathLike, cfg: EvalConfig | None = None,
                 log: Callable[[str], None] | None = print, log_file: bool = True) -> dict:
    """Evaluate the run in ``run_dir`` into ``run_dir/eval``; returns what metrics.json holds.

    ``cfg`` None: the saved eval/config.json if there is one, else the defaults. Lines go to ``log``
    and (unless ``log_file`` is False, when stdout already is that file) to eval/log.txt.
    """
    d = Path(run_dir)
    ev = d / "eval"
    ev.mkdir(exist_ok=True)
    if cfg is None:
        cfg = EvalConfig.load(ev / "config.json") if (ev / "config.json").exists() else EvalConfig()
    cfg.save(ev / "config.json")
    for stale in ("metrics.json", "report.csv", "quality.csv"):  # tsne.npz stays: it is a cache
        (ev / stale).unlink(missing_ok=True)

    def say(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        if log is not None:
            log(line)
        if log_file:
            with open(ev / "log.txt", "a") as f:
                f.write(line + "\n")

    status = runs.StatusWriter(ev)
    status.update(state="running", pid=os.getpid(), progress=0.0, phase="loading data", error=None,
                  started=time.time(), finished=None)
    status.start_heartbeat()
    try:
        out = _evaluate(d, ev, cfg, status, say)
        status.update(state="done", progress=1.0, phase="done", finished=time.time())
        return out
    except BaseException as e:
        stopped = isinstance(e, (EvaluationStopped, KeyboardInterrupt))
        status.update(state="stopped" if stopped else "failed", phase="stopped" if stopped else "failed",
                      error=None if stopped else f"{type(e).__name__}: {e}", finished=time.time())
        say("stopped" if stopped else f"failed: {type(e).__name__}: {e}")
        raise
    finally:
        status.close()


SUMMARY = ("accuracy", "acsa", "gmean", "macro_f1")  # the per-seed numbers a condition keeps


def _pm(sp: dict) -> str:
    return f"{sp['mean']:.3f} ± {sp['std']:.3f}" if sp.get("mean") is not None else "—"


# --- the steps ---------------------------------------------------------------------------------
def step_load(d: Path, cfg: EvalConfig, say) -> Context:
    from imbagan import splits
    from imbagan.batches import resolve_device
    from imbagan.config import TrainConfig

    run_cfg = TrainConfig.load(d / "config.json")
    device = resolve_device(cfg.device)
    train, kept = splits.load_split(run_cfg, "train")
    test, _ = splits.load_split(run_cfg, "test")
    full = splits.full_set(run_cfg, kept)
    counts = np.bincount(train.y, minlength=len(train.classes)).tolist()
    return Context(d, run_cfg, cfg, device, train, test, full, {}, budget_steps(counts, cfg))


def step_pool(c: Context, say) -> str | None:
    """Generated images for the gan conditions, quality and t-SNE; returns why there are none, if so."""
    from imbagan.generate import generate_pool

    c.pool, no_gen = generate_pool(c.run_dir, c.counts, c.cfg.quality_images, c.cfg.seed, c.device, say)
    return no_gen


def step_fit(c: Context, sets: dict[str, TrainSet], seeds: dict[str, list[int]],
             on_progress: Callable[[str, float, Any], None]) -> dict[str, list]:
    """Classifiers for every (training set, seed), trained together in one batched pass
    (``classifiers.fit_many``): each from the initial weights of its seed, for the same number of steps."""
    import torch

    from imbagan import classifiers as clf
    from imbagan import trainsets as ts

    k = len(c.names)
    jobs, keys = [], []
    for name, s in sets.items():
        x = torch.from_numpy(np.ascontiguousarray(s.x)).to(c.device)
        y = torch.from_numpy(s.y.astype(np.int64)).to(c.device)
        w = None if s.class_weight is None else torch.tensor(s.class_weight, dtype=torch.float32)
        offset = clf.log_prior(y, k, LA_TAU) if s.logit_adjusted else None
        aug = ts.augmentation_for(c.run_cfg.dataset, int(s.x.shape[-1])) if s.augment else None
        for seed in seeds[name]:
            jobs.append(clf.Job(x, y, seed, class_weight=w, logit_offset=offset,
                                plain_steps=int(s.plain_fraction * c.steps), augment=aug, name=name))
            keys.append(name)

    def report(step: int, total: int, losses) -> None:
        # fit_many counts steps on across its passes (total = steps x passes); each classifier trains c.steps.
        passes, (p, done) = round(total / c.steps), divmod(step - 1, c.steps)
        where = f"pass {p + 1} of {passes}, " if passes > 1 else ""
        on_progress(f"{len(jobs)} classifier{'s' * (len(jobs) != 1)}: {where}step {done + 1}/{c.steps}", step / total,
                    losses.mean())

    models = clf.fit_many(jobs, k, arch=c.cfg.classifier, width=c.cfg.width, steps=c.steps,
                          batch_size=c.cfg.batch_size, lr=c.cfg.lr, report_every=max(1, c.steps // 20),
                          on_report=report)
    out: dict[str, list] = {}
    for name, m in zip(keys, models):
        out.setdefault(name, []).append(m)
    return out


def test_logits(c: Context, model) -> np.ndarray:
    import torch

    from imbagan import classifiers as clf

    return clf.logits(model, torch.from_numpy(c.test.x).to(c.device)).cpu().numpy()


def step_test(c: Context, logits: np.ndarray, s: TrainSet) -> dict:
    """Per-class and summary metrics of one classifier's test logits on the untouched test split."""
    from imbagan import quality as q
    from imbagan.imbalance import minority_classes

    m = q.classification_metrics(c.test.y, logits.argmax(1), c.names, int(np.argmin(c.counts)))
    recall = {r["class"]: r["recall"] for r in m["per_class"]}
    m["minorities"] = [{"class": c.names[i], "recall": recall.get(c.names[i])} for i in minority_classes(c.counts)]
    m.update(train_size=int(len(s.y)), train_counts=np.bincount(s.y, minlength=len(c.names)).tolist(), note=s.note)
    return m


def step_quality(c: Context, reference) -> dict:
    import torch

    from imbagan import classifiers as clf
    from imbagan import quality as q

    def predict(x: np.ndarray) -> np.ndarray:
        return clf.predict(reference, torch.from_numpy(x).to(c.device)).cpu().numpy()

    def embed(x: np.ndarray) -> np.ndarray:
        return clf.features(reference, torch.from_numpy(x).to(c.device)).cpu().numpy()

    # FID's real side: the test split, held out from the reference classifier and the GAN.
    return q.generated_quality(c.pool, c.train, c.full, predict, embed, c.cfg.quality_images, c.cfg.ssim_pairs,
                               c.cfg.seed, c.device, heldout=c.test, heldout_name="test split")


def step_tsne(c: Context, reference, ev: Path) -> dict:
    import torch

    from imbagan import classifiers as clf

    def embed(x: np.ndarray) -> np.ndarray:
        return clf.features(reference, torch.from_numpy(x).to(c.device)).cpu().numpy()

    gap = {k: max(c.counts) - c.counts[k] for k in c.pool}  # the "gan" condition's generated images
    gen_x = np.concatenate([c.pool[k][:gap[k]] for k in c.pool])
    gen_y = np.concatenate([np.full(gap[k], k, dtype=np.int64) for k in c.pool])
    return evalfiles.tsne(ev, embed, [(c.train.x, c.train.y), (gen_x, gen_y), (c.test.x, c.test.y)], c.names,
                          c.cfg.tsne_points, c.cfg.seed)


def wait_for_training(c: Context, status: runs.StatusWriter, say, poll_s: float = 1.0) -> str:
    """Block while the run's GAN still trains (an evaluation launched alongside it); returns its final state.

    The job slot is given back for the wait and taken again after it, so the training is never queued
    behind the evaluation that waits for it."""
    st = runs.read_status(c.run_dir)
    if st.get("state") not in runs.ACTIVE:
        return str(st.get("state"))
    had_slot = runs.release_slot()
    say("the baselines are trained; waiting for the GAN to finish training")
    while (st := runs.read_status(c.run_dir)).get("state") in runs.ACTIVE:
        step, total = st.get("step") or 0, st.get("total")
        status.update(phase="waiting for the GAN to finish training"
                      + (f" (step {step:,} of {total:,})" if total else ""), eta_s=None,
                      waiting_for_training=True)  # the training takes our cores meanwhile (train.train)
        time.sleep(poll_s)
    status.update(waiting_for_training=False)
    if had_slot:
        runs.wait_for_slot(c.run_dir / "eval" / "status.json", c.run_dir.parent / runs.SLOTS_DIR)
        status.update(state="running")
    say(f"the run's training ended: {st.get('state')}")
    return str(st.get("state"))


# --- the evaluation, stage by stage ------------------------------------------------------------
@dataclass
class Evaluation:
    """What the stages of one evaluation share: its context, what it is asked, and what it has found."""

    c: Context
    ev: Path
    status: runs.StatusWriter
    say: Callable[[str], None]
    todo: list[str]  # condition names in report order (one gan entry per blend ratio)
    seeds: list[int]  # the classifier seeds every condition is trained with
    alongside: bool  # launched with the training: the GAN may still be training
    threads: cores.ThreadPolicy
    result: dict[str, Any]
    timing: dict[str, Any]
    n_jobs: int  # classifiers to train in all (for the progress bar)
    n_gan_jobs: int
    need_ref: bool  # the reference classifier (trained on the full real set) judges quality and t-SNE
    sets: dict[str, TrainSet] = field(default_factory=dict)
    models: dict[str, list] = field(default_factory=dict)
    per_seed: dict[str, list[dict]] = field(default_factory=dict)
    t_all: float = field(default_factory=time.perf_counter)
    t_wall: float = field(default_factory=time.time)
    t_fit: float = 0.0
    fit_s: float = 0.0

    def fit(self, sets: dict[str, TrainSet], seeds: dict[str, list[int]], done: int, count: int) -> None:
        """Train ``sets`` (each with its seeds) in one batched pass; progress counts them from job ``done``."""
        status, threads = self.status, self.threads

        def progress(phase: str, frac: float, loss) -> None:
            # ETA from the classifiers' own pace; quality and t-SNE add roughly a quarter of it (progress 0.8 -> 1).
            spent = time.perf_counter() - self.t_fit
            overall = (done + frac * count) / self.n_jobs
            eta = spent * (1 - overall) / overall * 1.25 if overall > 0 else None
            status.update(progress=min(0.99, 0.8 * overall), phase=phase, loss=float(loss), eta_s=eta)  # one sync
            if not self.take_freed_cores() and (n := threads.check()) is not None:
                self.say(f"the free cores changed: {n} thread(s) from here")

        t = time.perf_counter()
        self.t_fit = self.t_fit or t
        status.update(phase=f"training {sum(len(v) for v in seeds.values())} classifiers together")
        self.models.update(step_fit(self.c, sets, seeds, progress))
        self.fit_s += time.perf_counter() - t

    def take_freed_cores(self) -> bool:
        """Once the training beside us has ended, its cores are free: take every core (between two steps)."""
        if self.alongside and "training_ended_at_s" not in self.timing \
                and runs.read_status(self.c.run_dir).get("state") not in runs.ACTIVE:
            self.threads.settle()  # its cores are free unless another process holds one: half a second to see
            self.timing["training_ended_at_s"] = round(time.perf_counter() - self.t_all, 1)
            return True
        return False


def plan(d: Path, ev: Path, cfg: EvalConfig, status: runs.StatusWriter, say) -> Evaluation:
    """Load the splits, fix the classifier budget and seeds before anything is trained, and say so."""
    from imbagan.imbalance import minority_classes

    alongside = runs.read_status(d).get("state") in runs.ACTIVE  # launched with the training (runs.start)
    # Half the cores while the GAN trains beside us; while we wait for it, it takes ours (train.train), and once
    # it has ended we take every core back (take_freed_cores). Between those events the count follows the free
    # cores (cores.py): threads that outnumber the free cores are far slower than fewer threads (they spin-wait
    # for descheduled peers: 4x slower per classifier measured on 2 cores beside an unrelated busy process).
    threads = cores.ThreadPolicy(start=cores.sharing_start(sharing=alongside))
    t_all, t_wall = time.perf_counter(), time.time()
    c = step_load(d, cfg, say)
    todo = cfg.condition_names(c.device)
    say(f"evaluating {d.name}: {c.run_cfg.dataset}, {len(c.names)} classes, train counts {c.counts}, test "
        f"{len(c.test)} images; {cfg.classifier} for {c.steps} steps per condition on {c.device}; "
        f"conditions {', '.join(todo)}" + ("; the GAN is still training: the baselines go first" if alongside else ""))
    n_rep = repeats_for(cfg, c.device)
    seeds = [cfg.seed + r for r in range(n_rep)]
    timing: dict[str, Any] = {"device": str(c.device), "steps_per_condition": c.steps, "conditions": {},
                              "alongside_training": alongside, "threads": threads.threads}
    result: dict[str, Any] = {
        "run": {"id": d.name, "dataset": c.run_cfg.dataset, "method": c.run_cfg.method,
                "imbalance": c.run_cfg.imbalance, "classes": c.names, "train_counts": c.counts,
                "test_counts": np.bincount(c.test.y, minlength=len(c.names)).tolist(),
                "minority": int(np.argmin(c.counts)), "minority_classes": minority_classes(c.counts)},
        "conditions": {}, "skipped": {}, "quality": None, "tsne": None, "timing": timing, "config": cfg.to_dict(),
        "repeats": {"n": n_rep, "seeds": seeds,
                    "note": "each condition is trained with these classifier seeds; the imbalanced set, the "
                            "generated images and the test split stay the same"}}
    trained = {POST_HOC.get(n, n) for n in todo if not verdict.is_gan(n)}
    need_ref = cfg.quality_images > 0 or cfg.tsne_points > 0
    n_gan_jobs = sum(1 for n in todo if verdict.is_gan(n)) * n_rep
    n_jobs = len(trained) * n_rep + (need_ref and "full" not in trained) + n_gan_jobs
    return Evaluation(c, ev, status, say, todo, seeds, alongside, threads, result, timing, n_jobs, n_gan_jobs,
                      need_ref, t_all=t_all, t_wall=t_wall)


def fit_baselines(e: Evaluation) -> None:
    """Every condition that needs no generated image, and the reference classifier: trained first, while the GAN
    may still be training. A post-hoc condition's source is trained even when it is not reported itself."""
    for name in e.todo:
        if verdict.is_gan(name):
            continue
        source = POST_HOC.get(name, name)
        if source not in e.sets:
            e.status.update(phase=f"{source}: building the training set")
            e.sets[source] = training_set(source, e.c)
    seeds = {name: e.seeds for name in e.sets}
    fit_sets = dict(e.sets)
    if e.need_ref and "full" not in fit_sets:  # AGGAN §5.3's and BAGAN §5.1's reference classifier, one seed
        fit_sets["reference"] = training_set("full", e.c)
        seeds["reference"] = e.seeds[:1]
    if fit_sets:
        e.fit(fit_sets, seeds, 0, e.n_jobs - e.n_gan_jobs)


def wait_for_gan(e: Evaluation) -> None:
    """Launched alongside the training: wait for it to end, then take its cores."""
    if not e.alongside:
        return
    t = time.perf_counter()
    e.result["run"]["training_state"] = wait_for_training(e.c, e.status, e.say)
    e.timing["waited_s"] = time.perf_counter() - t
    e.take_freed_cores()  # the training's cores are free now (if the baselines did not take them already)
    e.timing["threads_after_training"] = e.threads.threads


def fit_gan_sets(e: Evaluation) -> None:
    """Draw the generated pool, and train the gan conditions on it (skipped, with the reason, when it is empty)."""
    t = time.perf_counter()
    no_gen = step_pool(e.c, e.say)
    e.timing["generate_s"] = time.perf_counter() - t
    e.result["run"].update(classes_modeled=sorted(e.c.pool), no_generator=no_gen)
    # Which generator was judged: its adversarial step against the steps asked, and how its training had ended
    # (verdict.unfinished_note says so beside the verdict when it was stopped short).
    st = runs.read_status(e.c.run_dir)
    e.result["run"].update(gan_step=runs.adversarial_step(st), gan_steps=int(e.c.run_cfg.steps))
    e.result["run"].setdefault("training_state", st.get("state"))
    gan_sets: dict[str, TrainSet] = {}
    for name in filter(verdict.is_gan, e.todo):
        if not e.c.pool:
            e.result["skipped"][name] = f"no generated images: {no_gen}"
            e.say(f"{name}: skipped ({no_gen})")
            continue
        e.status.update(phase=f"{name}: building the training set")
        gan_sets[name] = training_set(name, e.c)
    if not e.c.pool and e.need_ref:
        e.say(f"no image quality or t-SNE: {no_gen}")
    if gan_sets:
        e.fit(gan_sets, {name: e.seeds for name in gan_sets}, e.n_jobs - e.n_gan_jobs, e.n_gan_jobs)
        e.sets.update(gan_sets)
    e.timing["fit_s"] = e.fit_s


def score(e: Evaluation) -> None:
    """Every classifier on the untouched test split, each condition's spread over seeds, and the verdict."""
    c = e.c
    for name in e.todo:
        source = POST_HOC.get(name, name)
        if source not in e.models:
            continue
        tested = []
        for model in e.models[source]:
            lg = test_logits(c, model)
            if name in POST_HOC:
                lg = adjust_logits(lg, c.counts)
            tested.append(step_test(c, lg, e.sets[source]))
        m = dict(tested[0])  # the first seed's per-class numbers and confusion matrix draw the charts
        if name in POST_HOC:
            m["note"] = f"the {source} classifier, logits − {LA_TAU:g} · log prior at test time"
        m["repeats"] = [{k: r[k] for k in SUMMARY} | {"minority_recall": r["minority"]["recall"]} for r in tested]
        m["spread"] = {k: verdict.spread([r[k] for r in m["repeats"]]) for k in (*SUMMARY, "minority_recall")}
        e.result["conditions"][name] = m
        e.per_seed[name] = tested
        sp = m["spread"]
        e.say(f"{name:>12}: {m['train_size']} images  ACSA {_pm(sp['acsa'])}  macro F1 {_pm(sp['macro_f1'])}  "
              f"minority recall {_pm(sp['minority_recall'])}" + (f"  [{m['note']}]" if m.get("note") else ""))
    collected = verdict.collect(e.per_seed.items())
    e.result["verdict"] = {"rule": verdict.RULE, "best_baseline": verdict.best_baseline(collected),
                           "conditions": verdict.verdicts(collected)}
    for v in e.result["verdict"]["conditions"].values():
        e.say("verdict: " + v["text"])
    evalfiles.write_results(e.ev, e.result)  # the classifiers' results for the page while quality and t-SNE run


def judge_images(e: Evaluation) -> None:
    """The generated images under the reference classifier: class accuracy, diversity, FID, and the t-SNE."""
    first = {k: v[0] for k, v in e.models.items()}
    reference = first.get("full", first.get("reference")) if e.need_ref and e.c.pool else None
    if reference is None:
        return
    cfg, timing = e.c.cfg, e.timing
    if cfg.quality_images > 0:
        e.status.update(phase="image quality", progress=0.8)
        t = time.perf_counter()
        q = e.result["quality"] = step_quality(e.c, reference)
        timing["quality_s"] = time.perf_counter() - t
        ov = q["overall"]
        e.say(f"quality: class accuracy {ov['class_accuracy']:.3f}, SSIM gen {ov['ssim_gen']:.3f} vs real "
              f"{ov['ssim_real']:.3f}, NN-SSIM gen {ov['nn_ssim_gen']:.3f} vs real {ov['nn_ssim_real']:.3f}, "
              f"domain FID {ov['domain_fid']:.2f} on {ov['fid_images']} images a side vs the "
              f"{q['fid_real']} ({timing['quality_s']:.1f} s)")
    if cfg.tsne_points > 0:
        e.status.update(phase="t-SNE", progress=0.9)
        t = time.perf_counter()
        ts = e.result["tsne"] = step_tsne(e.c, reference, e.ev)
        timing["tsne_s"] = time.perf_counter() - t
        e.say(f"t-SNE of {ts['points']} points: {'reused' if ts['cached'] else 'computed'} in {timing['tsne_s']:.1f} s")


def _evaluate(d: Path, ev: Path, cfg: EvalConfig, status: runs.StatusWriter, say) -> dict:
    e = plan(d, ev, cfg, status, say)
    fit_baselines(e)
    wait_for_gan(e)
    fit_gan_sets(e)
    score(e)
    judge_images(e)
    e.timing["total_s"] = time.perf_counter() - e.t_all
    e.timing["thread_changes"] = [[round(t - e.t_wall, 1), n] for t, n in e.threads.changes]  # [s in, threads]
    e.timing["thread_source"] = e.threads.source
    evalfiles.write_results(ev, e.result)
    say(f"evaluation done in {e.timing['total_s']:.1f} s")
    return e.result


# --- background process --------------------------------------------------------------------------
def start_evaluation(run_dir: str | os.PathLike, eval_cfg: EvalConfig | None = None) -> None:
    """Launch the evaluation of a run in the background (see ``runs.start_evaluation``)."""
    runs.start_evaluation(run_dir, (eval_cfg or EvalConfig()).to_dict())


def stop_evaluation(run_dir: str | os.PathLike) -> None:
    """Ask a running evaluation to stop (SIGTERM); its status becomes 'stopped'."""
    st = runs.read_status(Path(run_dir) / "eval")
    if st.get("state") in runs.ACTIVE and runs.signallable(st):
        try:
            os.kill(int(st["pid"]), signal.SIGTERM)
        except (ProcessLookupError, PermissionError):  # gone, or another user's: as runs.stop, nothing to signal
            pass


def worker_main(run_dir: Path, cfg: EvalConfig | None, log_file: bool = True) -> int:
    """The evaluation process: SIGTERM stops it cleanly; errors end up in eval/status.json."""
    def on_term(signum, frame):
        raise EvaluationStopped()

    signal.signal(signal.SIGTERM, on_term)
    try:
        evaluate_run(run_dir, cfg, log=print, log_file=log_file)
        return 0
    except (EvaluationStopped, KeyboardInterrupt):
        return 0
    except Exception as e:
        if not log_file:  # launched in the background: stdout is eval/log.txt
            traceback.print_exc()
            return 1
        # In a terminal: one sentence; the traceback goes to eval/log.txt with the rest of the log.
        log = Path(run_dir) / "eval" / "log.txt"
        try:
            with open(log, "a") as f:
                traceback.print_exc(file=f)
            where = f" (the traceback is in {log})"
        except OSError:
            where = ""
        first = (str(e).strip().splitlines() or [""])[0]
        print(f"error: {type(e).__name__}: {first}{where}", file=sys.stderr)
        return 1


