"""Runs as background processes: a real run ends done, stop is honoured, a killed worker shows as failed."""

import os
import signal
import subprocess
import sys
import time

import pytest

from imbagan import evaluate, runs
from imbagan.config import TrainConfig
from imbagan.methods import METHODS
from tests.conftest import tiny_config, wait_for

pytestmark = pytest.mark.slow




def test_real_background_run_of_bagan_on_digits_ends_done(tmp_path):
    cfg = tiny_config(method="bagan", imbalance="step", ir=10.0, width=16, batch_size=16, ae_steps=20, steps=30,
                      tick_every=10, sample_every=10, checkpoint_every=25)
    rid = runs.start(cfg, tmp_path)
    d = runs.run_dir(rid, tmp_path)
    st = wait_for(lambda: (s := runs.read_status(d))["state"] not in runs.ACTIVE and s)
    assert st["state"] == "done", runs.log_tail(d)
    assert st["step"] == st["total"] == 50
    m = runs.read_metrics(d)
    assert m[-1]["step"] == 50 and "d_loss" in m[-1]
    assert len(runs.sample_paths(d)) == 4  # at steps 20 (start of GAN), 30, 40, 50
    assert (d / "checkpoint.pt").exists() and not list(d.glob(".*.tmp"))
    assert "done at step 50/50" in runs.log_tail(d)
    assert [r.id for r in runs.list_runs(tmp_path)] == [rid]


def _long_run(tmp_path):
    cfg = tiny_config(method="gan", steps=1_000_000, tick_every=5, checkpoint_every=50)
    rid = runs.start(cfg, tmp_path)
    d = runs.run_dir(rid, tmp_path)
    wait_for(lambda: (runs.read_status(d).get("step") or 0) >= 5)
    return rid, d


def test_stop_is_honoured_and_resume_continues(tmp_path):
    rid, d = _long_run(tmp_path)
    t = time.time()
    st = runs.stop(rid, tmp_path)
    assert time.time() - t < 5
    assert st["state"] == "stopped" and runs.read_status(d)["state"] == "stopped"
    stopped_at = st["step"]
    assert stopped_at > 0 and (d / "checkpoint.pt").exists()
    runs.resume(rid, tmp_path)
    wait_for(lambda: (runs.read_status(d).get("step") or 0) > stopped_at)
    assert "resumed from step" in runs.log_tail(d)
    assert runs.stop(rid, tmp_path)["state"] == "stopped"
    with pytest.raises(ValueError, match="nothing to resume"):
        st = runs.read_json(d / "status.json")
        runs.write_json_atomic(d / "status.json", {**st, "state": "done"})
        runs.resume(rid, tmp_path)


def test_a_killed_worker_is_shown_as_failed_and_keeps_its_files(tmp_path):
    rid, d = _long_run(tmp_path)
    pid = runs.read_status(d)["pid"]
    os.kill(pid, signal.SIGKILL)
    st = wait_for(lambda: (s := runs.read_status(d))["state"] == "failed" and s, timeout=10)
    assert "ended without saying why" in st["error"]
    assert runs.read_metrics(d)  # still readable
    assert runs.read_json(d / "status.json")["state"] == "failed"  # and saved, not only reported


def test_a_failing_worker_records_its_error(tmp_path):
    cfg = tiny_config(dataset="mnist", data_root=str(tmp_path / "nowhere"))
    rid = runs.start(cfg, tmp_path)
    d = runs.run_dir(rid, tmp_path)
    st = wait_for(lambda: (s := runs.read_status(d))["state"] not in runs.ACTIVE and s)
    assert st["state"] == "failed"
    assert "nowhere" in st["error"]  # the message names the folder it looked in


def test_run_ids_cannot_escape_the_runs_folder(tmp_path):
    with pytest.raises(ValueError):
        runs.run_dir("../etc", tmp_path)
    with pytest.raises(FileNotFoundError):
        runs.run_dir("no-such-run", tmp_path)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_in_a_background_worker(tmp_path, method):
    cfg = tiny_config(method=method, imbalance="step", ir=10.0, ae_steps=2, steps=4, tick_every=2, sample_every=2)
    rid = runs.start(cfg, tmp_path)
    d = runs.run_dir(rid, tmp_path)
    st = wait_for(lambda: (s := runs.read_status(d))["state"] not in runs.ACTIVE and s)
    assert st["state"] == "done", runs.log_tail(d)
    assert runs.read_metrics(d)[-1]["phase"] == "adversarial" and runs.sample_paths(d)


def test_a_run_being_launched_is_not_taken_for_dead(tmp_path):
    d = runs.create(tiny_config(), tmp_path)  # 'queued' with no pid yet, as between create and launch
    assert runs.read_status(d)["state"] == "queued"
    st = runs.read_json(d / "status.json")
    runs.write_json_atomic(d / "status.json", {**st, "heartbeat": time.time() - 2 * runs.STALE_AFTER_S})
    assert runs.read_status(d)["state"] == "failed"  # but one that never started is, after a while


def _others_use_no_core() -> bool:
    """Whether the other processes on this machine use less than imbagan.cores.TAKEN of a core (a 1 s reading)."""
    import time

    from imbagan import cores

    load = cores.OthersLoad()
    time.sleep(1.0)
    return (load.read() or 0.0) < cores.TAKEN


def test_an_evaluation_launched_with_the_training_trains_baselines_first_then_waits_for_the_gan(tmp_path, monkeypatch):
    """runs.start(cfg) with cfg.evaluate_after set, as the Train page does: with one job slot, the evaluation must
    give its slot back while it waits, or the training it waits for would queue behind it forever."""
    from imbagan.evaluate import EvalConfig

    monkeypatch.setenv("IMBAGAN_MAX_JOBS", "1")
    monkeypatch.delenv("IMBAGAN_THREADS")  # the workers choose their threads themselves, as in the app
    ecfg = EvalConfig(conditions=("imbalanced", "logit_adjust", "gan", "full"), epochs=1, batch_size=32, width=4,
                      repeats=1, tsne_points=0, quality_images=20, ssim_pairs=5, device="cpu")
    cfg = tiny_config(method="gan", steps=40, tick_every=10, sample_every=20, checkpoint_every=20, evaluate_after=True)
    # runs.start's two launches, with the evaluation holding the one slot before the worker asks for it
    # (runs.start does not wait for that; the worker may also win the race, and then nothing waits)
    d = runs.create(cfg, tmp_path)
    runs.start_evaluation(d, ecfg.to_dict(), alongside=True)
    wait_for(lambda: runs.read_status(d / "eval").get("phase", "").startswith(("imbalanced", "training")), timeout=120)
    runs._launch(d, resume=False)
    st = wait_for(lambda: (s := runs.read_status(d / "eval"))["state"] not in runs.ACTIVE and s, timeout=300)
    assert st["state"] == "done", runs.log_tail(d / "eval")
    assert runs.read_status(d)["state"] == "done"
    m = runs.read_json(d / "eval" / "metrics.json")
    assert list(m["conditions"]) == ["imbalanced", "logit_adjust", "gan", "full"]
    assert m["timing"]["alongside_training"] is True and m["run"]["training_state"] == "done"
    assert "training_ended_at_s" in m["timing"]  # it took the training's cores back when the training ended
    if (os.cpu_count() or 1) >= 2 and _others_use_no_core():
        # half the cores beside the training, every core once it has ended (its cores are free); on a machine
        # that other processes keep busy (a CI neighbour, a benchmark) it rightly takes only the free ones
        assert m["timing"]["threads"] < m["timing"]["threads_after_training"]
    log = (d / "eval" / "log.txt").read_text()
    assert "the GAN is still training: the baselines go first" in log
    # the baselines were trained before the GAN's training ended, the GAN's set after it
    assert log.index("waiting for the GAN to finish training") < log.index("the run's training ended: done") \
        < log.index("generated")
    assert m["verdict"]["conditions"]["gan"]["best_baseline"] == "logit_adjust"
    assert runs.evaluated_final(d)  # so the worker did not launch a second evaluation when training ended
    assert log.count("evaluating ") == 1


def test_start_launches_the_evaluation_first_when_asked(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(runs, "start_evaluation", lambda d, cfg, alongside=False: calls.append(("eval", alongside)))
    monkeypatch.setattr(runs, "_launch", lambda d, resume: calls.append(("worker", resume)))
    runs.start(tiny_config(evaluate_after=True), tmp_path)
    assert calls == [("eval", True), ("worker", False)]
    calls.clear()
    runs.start(tiny_config(), tmp_path)
    assert calls == [("worker", False)]


def test_stop_never_signals_a_process_that_a_stale_status_names(tmp_path):
    """A status can outlive its worker: after a crash or a reboot its pid may name another process, even the app
    (a process-group leader when a shell started it). Stop marks such a run stopped and signals nobody; a process
    that was there at the status's last heartbeat (here one training in a bench script's own process) it stops."""
    stale = time.time() - 30  # the last heartbeat of a worker that died before the bystander started
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        assert runs.process_start(bystander.pid) > stale
        for pid in (os.getpid(), bystander.pid):
            d = runs.create(tiny_config(), tmp_path)
            running = {"state": "running", "pid": pid, "step": 3, "total": 10, "heartbeat": stale, "error": None}
            assert not runs.signallable(running)
            runs.write_json_atomic(d / "status.json", running)
            (d / "eval").mkdir()
            runs.write_json_atomic(d / "eval" / "status.json", running)
            started = time.time()
            assert runs.stop(d.name, tmp_path, timeout=5)["state"] == "stopped"
            assert time.time() - started < 2  # nothing to wait for: it signalled no one
            evaluate.stop_evaluation(d)
        assert bystander.poll() is None
        assert not runs.signallable({"pid": os.getpid(), "heartbeat": time.time()}) and not runs.signallable({})
        # the same process named by a live heartbeat is the status's writer: stop ends it
        d = runs.create(tiny_config(), tmp_path)
        runs.write_json_atomic(d / "status.json", {"state": "running", "pid": bystander.pid, "step": 3, "total": 10,
                                                   "heartbeat": time.time(), "error": None})
        assert runs.stop(d.name, tmp_path, timeout=5)["state"] == "stopped"
        assert not runs.pid_alive(bystander.pid)  # (stop reaped it: Popen no longer sees its exit code)
    finally:
        bystander.kill()
        bystander.wait()


def test_evaluation_idle_only_when_it_has_ended_or_waits_for_the_training(tmp_path):
    d = tmp_path / "run"
    (d / "eval").mkdir(parents=True)
    assert runs.evaluation_idle(d)  # no evaluation at all

    def say(**st):
        runs.write_json_atomic(d / "eval" / "status.json",
                               {"pid": os.getpid(), "heartbeat": time.time(), "error": None, **st})

    say(state="queued")  # starting up or about to run: it will want its cores
    assert not runs.evaluation_idle(d)
    say(state="running", phase="training 6 classifiers together")
    assert not runs.evaluation_idle(d)
    say(state="running", phase="waiting for the GAN to finish training", waiting_for_training=True)
    assert runs.evaluation_idle(d)
    say(state="running", phase="training 2 classifiers together", waiting_for_training=False)
    assert not runs.evaluation_idle(d)
    say(state="done")
    assert runs.evaluation_idle(d)


def test_extend_trains_a_finished_run_further_as_a_new_run_and_keeps_the_old_one(tmp_path):
    from imbagan import train

    d = runs.create(tiny_config(method="gan", steps=6), tmp_path)
    assert train.train(d, log=lambda s: None) == "done"
    before = {p.name: p.read_bytes() for p in d.rglob("*") if p.is_file() and p.name != "lock"}
    with pytest.raises(ValueError, match="ask for more than that"):
        runs.extend(d.name, 6, tmp_path)
    new = runs.extend(d.name, 12, tmp_path)
    n = runs.run_dir(new, tmp_path)
    st = wait_for(lambda: (s := runs.read_status(n))["state"] not in runs.ACTIVE and s)
    assert st["state"] == "done" and st["step"] == 12, runs.log_tail(n)
    assert "resumed from step 6" in runs.log_tail(n) and f"continues run {d.name}" in runs.log_tail(n)
    assert runs.continues(n) == {"run": d.name, "step": 6, "steps": 6} and runs.continues(d) is None
    (d / "continues.json").write_text("[1, 2]")  # unreadable as a record: as if it continued nothing
    assert runs.continues(d) is None
    (d / "continues.json").unlink()
    steps = [m["step"] for m in runs.read_metrics(n)]
    assert steps == sorted(steps) and steps[0] <= 6 < steps[-1] == 12  # one curve across both sessions
    assert [p.name for p in runs.sample_paths(n)][:3] == [p.name for p in runs.sample_paths(d)]
    assert len(runs.sample_paths(n)) > len(runs.sample_paths(d))
    after = {p.name: p.read_bytes() for p in d.rglob("*") if p.is_file() and p.name != "lock"}
    assert after == before  # the old run is untouched
    from imbagan.__main__ import _fmt_run

    listed = {r.id: _fmt_run(r) for r in runs.list_runs(tmp_path)}  # `python -m imbagan runs`
    assert listed[new].endswith(f"(continues {d.name} from step 6)") and "continues" not in listed[d.name]


def test_extend_refuses_a_running_run_and_trains_all_the_steps_of_a_converged_one(tmp_path):
    from imbagan import train

    rid, d = _long_run(tmp_path)
    with pytest.raises(ValueError, match="only a finished or stopped run"):
        runs.extend(rid, 2_000_000, tmp_path)
    runs.stop(rid, tmp_path)
    d2 = runs.create(tiny_config(method="gan", steps=6), tmp_path)
    train.train(d2, log=lambda s: None)
    # As a run stopped by the convergence rule leaves itself (written by hand: the rule needs a quality curve).
    cfg = runs.read_json(d2 / "config.json")
    runs.write_json_atomic(d2 / "config.json", {**cfg, "quality_curve": "on", "stop_when": "converged"})
    runs.write_json_atomic(d2 / "status.json", {**runs.read_status(d2), "converged_step": 3})
    new = runs.extend(d2.name, 9, tmp_path)
    n = runs.run_dir(new, tmp_path)
    assert runs.read_json(n / "config.json")["stop_when"] == "steps"
    wait_for(lambda: runs.read_status(n)["state"] not in runs.ACTIVE)


def test_finished_config_says_why_a_folder_is_not_a_finished_run(tmp_path):
    """The one check behind extend, bench/quality.py --from-runs and bench/verdict.py --from-runs."""
    with pytest.raises(ValueError, match="not a run folder"):
        runs.finished_config(tmp_path)
    d = runs.create(tiny_config(method="gan", steps=6), tmp_path)  # queued, never trained
    with pytest.raises(ValueError, match="queued, not a finished run"):
        runs.finished_config(d)
    for state in runs.FINISHED:
        runs.write_json_atomic(d / "status.json", {**runs.read_status(d), "state": state})
        assert runs.finished_config(d) == TrainConfig.load(d / "config.json")
