"""The live view of one run: progress, sample grids, curves, Stop/Resume; redrawn by a fragment."""

from __future__ import annotations

import time

import streamlit as st

from imbagan import runs
from ui.labels import eta_text
from ui import charts

REFRESH_S = 2.0
STATE_ICON = {"queued": "⏳", "running": "🟢", "done": "✅", "failed": "❌", "stopped": "⏹️", "unreadable": "⚠️"}


def selected_run(options: list[str]) -> str | None:
    """The run named in the URL (?run=...), so a refresh or a new tab shows the same run.

    A name that is no run (a typo, an old link, anything typed into the URL) gets one sentence, and the
    page shows the newest run instead."""
    rid = st.query_params.get("run")
    if rid and rid not in options:
        shown = "".join(ch for ch in str(rid)[:80] if ch.isprintable() and ch != "`")
        st.warning(f"No run named `{shown}`" + ("; showing the newest run instead." if options else "."))
    return rid if rid in options else None


def _imbalance(c: dict) -> str:
    """The imbalance in a few words: 'step IR 10', 'drop 90% of 3', 'balanced'."""
    prof, ir = c.get("imbalance"), c.get("ir")
    ir_txt = f"IR {ir:g}" if isinstance(ir, (int, float)) else ""
    if prof == "none":
        return "balanced"
    if prof == "drop":
        return f"drop {c.get('drop', 0):g}% of {','.join(str(m) for m in c.get('minority') or [])}"
    if prof in ("step", "longtail", "binary"):
        return f"{prof} {ir_txt}".strip()
    return str(prof)


def _when(r: runs.RunInfo) -> str:
    created = r.status.get("created")
    if not created:
        try:
            created = time.mktime(time.strptime(r.id[:15], "%Y%m%d-%H%M%S"))
        except ValueError:
            return r.id
    t = time.localtime(created)
    return time.strftime("%H:%M" if t[:3] == time.localtime()[:3] else "%d %b %H:%M", t)


def run_label(r: runs.RunInfo, state: bool = False) -> str:
    """A short readable name: method · dataset · imbalance · time (with a state icon if asked)."""
    c = r.config
    name = f"{c.get('method')} · {c.get('dataset')} · {_imbalance(c)} · {_when(r)}"
    return f"{STATE_ICON.get(r.state, '')} {name}" if state else name


def run_labels(rs: list[runs.RunInfo], state: bool = False) -> dict[str, str]:
    """``{run id: run_label}``; runs that would read the same get their id's last characters."""
    out = {r.id: run_label(r, state) for r in rs}
    seen: dict[str, int] = {}
    for lab in out.values():
        seen[lab] = seen.get(lab, 0) + 1
    return {rid: (f"{lab} ({rid[-4:]})" if seen[lab] > 1 else lab) for rid, lab in out.items()}


def runs_table(rs: list[runs.RunInfo]):
    """A compact list of runs with state and progress; the name opens the run on the Train page."""
    names = run_labels(rs)
    # The link column decodes the URL before matching its display text: a bare "%" (as in "drop 95% of 3")
    # is no valid escape and showed the raw link, so it travels as "%25".
    rows = [{"run": f"train?run={r.id}#{names[r.id].replace('%', '%25')}", "state": f"{STATE_ICON.get(r.state, '')} {r.state}",
             "progress": r.progress, "step": f"{r.status.get('step') or 0}/{r.status.get('total') or '?'}",
             "id": r.id} for r in rs]
    st.dataframe(rows, hide_index=True, width="stretch",
                 column_config={"run": st.column_config.LinkColumn("run", display_text=r"#(.*)$",
                                                                   help="Opens the run on the Train page."),
                                "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0)})


def _progress(st_: dict, cfg: dict) -> None:
    step, total = st_.get("step") or 0, st_.get("total") or 0
    frac = min(1.0, step / total) if total else 0.0
    rate = st_.get("img_per_s")
    parts = [f"step {step:,}/{total:,}" if total else "starting…", st_.get("phase") or ""]
    if st_.get("state") == "running" and rate:
        parts.append(f"{rate:,.0f} images/s")
        pre = int(st_.get("pretrain_steps") or 0)
        if st_.get("eta_s") is None and st_.get("stage_eta_s") is not None and step < pre:
            # Still pre-training: the adversarial pace is not known yet, so only this stage has an ETA.
            parts.append(f"autoencoder done in {eta_text(st_.get('stage_eta_s'))}, then the adversarial steps")
        else:
            parts.append(f"ETA {eta_text(st_.get('eta_s'))}")
    st.progress(frac, text=" · ".join(p for p in parts if p))


def _evaluation(r: runs.RunInfo) -> None:
    """The run's evaluation, when there is one (launched with it, or since): one line and the way to its page."""
    if not (r.dir / "eval" / "status.json").exists():
        return
    s = runs.read_status(r.dir / "eval")
    state = s.get("state")
    text = {"done": "evaluated: the verdict is ready", "failed": f"evaluation failed: {s.get('error') or ''}",
            "stopped": "evaluation stopped"}.get(state, f"evaluating: {s.get('phase') or 'starting'}")
    c1, c2 = st.columns([3, 1])
    if state in runs.ACTIVE:
        c1.progress(float(s.get("progress") or 0.0), text=text)
        if r.state in ("stopped", "failed"):  # by design it goes on: the user may want the verdict on this GAN
            c1.caption(f"The training {r.state} at step {runs.adversarial_step(r.status):,}: the evaluation "
                       "launched with it goes on and judges the GAN as it stands, and its report says so. Stop "
                       "it on its page, or resume the run and evaluate again when it finishes.")
    else:
        c1.caption(text)
    c2.page_link("pages/evaluate.py", label="Open the evaluation", icon="📊", query_params={"run": r.id})


def _grid(d, key: str, status: dict) -> None:
    paths = runs.sample_paths(d)
    if not paths:
        pre = status.get("pretrain_steps") or 0
        st.info("The first sample grid appears when adversarial training starts"
                + (f" (after {pre:,} autoencoder steps)." if pre else "."))
        return
    follow = st.toggle("Follow the newest grid", value=True, key=f"{key}.follow")
    idx = len(paths) - 1
    if not follow and len(paths) > 1:
        steps = [int(p.stem) for p in paths]
        chosen = st.select_slider("Step", options=steps, value=steps[-1], key=f"{key}.slider")
        idx = steps.index(chosen)
    first = int(paths[idx].stem) == (status.get("pretrain_steps") or 0)
    modeled, classes = status.get("classes_modeled") or [], status.get("classes") or []
    if classes and 0 < len(modeled) < len(classes):
        st.caption("Hatched rows: classes this method does not model (it draws only "
                   + ", ".join(str(classes[c]) for c in modeled) + ").")
    st.image(str(paths[idx]), caption=f"step {int(paths[idx].stem):,}"
             + (" (the generator as initialised, before adversarial training)" if first else "")
             + ": one row per class, the same noise in "
             "every frame; red rows with a marker are minority classes (fewer than half the largest class's images).")


def _quality(r: runs.RunInfo, run_id: str) -> None:
    """The convergence curve: per-class quality of each snapshot, with what the convergence rule says so far."""
    from imbagan import convergence

    recs = convergence.read_curve(r.dir)
    if r.config.get("quality_curve") == "off":
        return
    if not recs:
        st.info("The convergence curve (per-class image quality) appears with the first sample grid.")
        return
    metric = st.radio("Convergence curve", ["fid", "class_acc"], horizontal=True, key=f"qmetric.{run_id}",
                      format_func={"fid": "domain FID", "class_acc": "class accuracy"}.get,
                      help="Each snapshot judges a fixed batch of generated images per class with a reference "
                           "CNN trained once on the whole dataset: FID against real images of the class that "
                           "the run did not train on, and the share the CNN assigns to the right class.")
    st.plotly_chart(charts.quality_figure(recs, r.status.get("classes") or [], metric), key=f"quality.{run_id}")
    last = recs[-1]
    conv, cand = last.get("converged_step"), last.get("candidate_step")
    if r.status.get("converged_step") is not None:
        text = f"Converged at step {r.status['converged_step']:,}: the run stopped there, as asked."
    elif conv is not None:
        text = (f"Converged by step {conv:,}: no later snapshot improved the mean FID by more than 10%. "
                "Training further is unlikely to help.")
    elif cand is not None and cand < last.get("adv_step", 0):
        text = (f"The mean FID has not improved by more than 10% since step {cand:,}; the rule confirms "
                f"convergence at step {max(2 * cand, cand + 3 * int(r.config.get('sample_every') or 1)):,} "
                "if it stays so.")
    else:
        text = "Still improving: the newest snapshot is the best so far."
    cost = sum(x.get("quality_s") or 0 for x in recs)
    trained = last.get("train_s") or 0
    share = f" The curve has cost {cost:.0f} s, {100 * cost / trained:.0f}% of the training time." if trained else ""
    st.caption(text + share)


def _extend(run_id: str, key: str) -> None:
    """The button's callback: runs before the page reruns, so it may choose the new run in the selector."""
    try:
        new = runs.extend(run_id, int(st.session_state[key]))
    except (ValueError, FileNotFoundError) as e:
        st.session_state[f"{key}.error"] = str(e)
        return
    st.session_state["train.run"] = new
    st.query_params["run"] = new


def _train_longer(r: runs.RunInfo, run_id: str) -> None:
    """More steps for a run whose curve was still improving: a new run from its checkpoint; this one stays."""
    steps = int(r.config.get("steps") or 0)
    key = f"longer.{run_id}"
    with st.popover("Train longer"):
        st.number_input("Adversarial steps in all", min_value=steps + 1, value=2 * steps, step=max(1, steps // 4),
                        key=key)
        st.caption("A new run starts from this run's checkpoint, with its curves and grids; this run and its "
                   "evaluation stay as they are.")
        started = st.button("Start", key=f"{key}.go", on_click=_extend, args=(run_id, key))
    if started and f"{key}.error" not in st.session_state:
        st.rerun()  # the whole page (we are in a fragment), so the selector shows the new run
    if msg := st.session_state.pop(f"{key}.error", None):
        st.error(msg)


def run_panel(run_id: str) -> None:
    """Everything about one run; refreshes itself every ~2 s while the run is active."""
    try:
        first = runs.info(run_id)
    except (ValueError, FileNotFoundError) as e:
        st.warning(str(e))
        return
    active = first.state in runs.ACTIVE

    @st.fragment(run_every=REFRESH_S if active else None)
    def panel() -> None:
        r = runs.info(run_id)
        s, c = r.status, r.config
        st.subheader(f"{STATE_ICON.get(r.state, '')} {c.get('method')} on {c.get('dataset')} ({r.state})")
        _progress(s, c)
        b1, b2, _ = st.columns([1, 1, 4])
        if r.state in runs.ACTIVE and b1.button("Stop", key=f"stop.{run_id}", type="primary"):
            runs.stop(run_id)
            st.rerun()
        if r.state in ("stopped", "failed") and b2.button("Resume", key=f"resume.{run_id}"):
            try:
                runs.resume(run_id)
            except ValueError as e:
                st.error(str(e))
            st.rerun()
        if r.state in ("done", "stopped"):
            _train_longer(r, run_id)
        if parent := runs.continues(r.dir):
            st.caption(f"Continues run `{parent['run']}` from its checkpoint at step {parent.get('step') or 0:,}.")
        _evaluation(r)
        if r.state == runs.UNREADABLE:
            st.error(f"This run's files cannot be read: {s.get('error')}. Other runs are not affected.")
            return
        if r.state == "failed":
            st.error(f"This run failed: {s.get('error') or 'no reason recorded'}")
            st.code(runs.log_tail(r.dir) or "(the log is empty)", language=None)
        left, right = st.columns([1, 1])
        with left:
            _grid(r.dir, f"grid.{run_id}", s)
        with right:
            _quality(r, run_id)
            df = charts.metrics_frame(runs.read_metrics(r.dir))
            if df.empty:
                st.info("Loss curves appear after the first tick.")
            else:
                losses, other = charts.curve_keys(df)
                st.plotly_chart(charts.curves_figure(df, losses, "Losses"), key=f"loss.{run_id}")
                if other:
                    st.plotly_chart(charts.curves_figure(df, other, "Diagnostics"), key=f"diag.{run_id}")
        if active and r.state not in runs.ACTIVE:
            st.rerun()  # the run ended: redraw the page once, without the timer

    panel()
