"""Evaluate: did balancing help, for which classes, and are the generated images any good?"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import streamlit as st

from imbagan import conditions, evalconfig, evalfiles, evaluate, runs, verdict
from ui.labels import eta_text
from ui import charts, live
from ui.labels import label, number_format, pct, tooltip

st.title("Evaluate a balancing run")
st.caption("The same classifier is trained on the imbalanced set, on classic re-balancings and on the set topped "
           "up with the run's generated images, then tested on the untouched, balanced test split.")

# Trained runs, and runs whose evaluation was launched with their training (it waits for the GAN).
finished = evalfiles.evaluable_runs()
if not finished:
    st.info("No trained run yet: train one on the Train page first (a stopped run with a checkpoint works too).")
    st.page_link("pages/train.py", label="Go to Train", icon="🏋️")
    st.stop()

ids = [r.id for r in finished]
current = live.selected_run(ids) or ids[0]
labels = live.run_labels(finished, state=True)
chosen = st.selectbox("Run", ids, index=ids.index(current), format_func=labels.get, key="eval.run")
if chosen != st.query_params.get("run"):
    st.query_params["run"] = chosen
run = runs.info(chosen)

with st.expander("Evaluation settings", expanded=evalfiles.read_evaluation(run.dir) is None):
    d = dataclasses.asdict(evaluate.EvalConfig())
    c1, c2, c3 = st.columns(3)
    clf = c1.selectbox("Classifier", evalconfig.CLASSIFIERS, key="eval.classifier",
                       help=evalconfig.FIELD_HELP.get("classifier"))
    epochs = c2.number_input("Epochs", 1, 200, d["epochs"], key="eval.epochs", help=evalconfig.FIELD_HELP.get("epochs"))
    tsne_points = c3.number_input("t-SNE points", 0, 20000, d["tsne_points"], step=500, key="eval.tsne",
                                  help=evalconfig.FIELD_HELP.get("tsne_points"))
    c4, c5, c6 = st.columns(3)
    quality = c4.number_input("Generated images per class (quality)", 0, 5000, d["quality_images"], step=100,
                              key="eval.quality", help=evalconfig.FIELD_HELP.get("quality_images"))
    pairs = c5.number_input("SSIM pairs per class", 0, 2000, d["ssim_pairs"], step=50, key="eval.pairs",
                            help=evalconfig.FIELD_HELP.get("ssim_pairs"))
    repeats = c6.number_input("Classifier seeds per training set (0: automatic)", 0, 20, d["repeats"],
                              key="eval.repeats", help=evalconfig.FIELD_HELP.get("repeats"))
    conds = st.multiselect("Training sets to compare", conditions.CONDITIONS, default=list(evalconfig.default_conditions()),
                           key="eval.conditions", help=evalconfig.FIELD_HELP.get("conditions"))
    st.markdown("\n".join(f"- **{c}**: {conditions.DESCRIPTIONS.get(c, '')}" for c in conds))
    try:
        ecfg = evaluate.EvalConfig(classifier=clf, epochs=int(epochs), tsne_points=int(tsne_points),
                                   quality_images=int(quality), ssim_pairs=int(pairs), conditions=tuple(conds),
                                   repeats=int(repeats))
        problem = None
    except ValueError as e:
        ecfg, problem = None, str(e)
    if problem:
        st.error(problem)
    if st.button("Launch evaluation", type="primary", disabled=ecfg is None, key="eval.launch"):
        try:
            evaluate.start_evaluation(run.dir, ecfg)
        except (ValueError, FileNotFoundError) as e:
            st.error(str(e))
        else:
            st.rerun()


def _number_columns(keys) -> dict:
    """Readable headers, a one-line tooltip and the same decimals for every number column (ui.labels)."""
    return {k: st.column_config.NumberColumn(label(k), help=tooltip(k), format=number_format(k)) for k in keys}


def _eta(s: dict) -> str:
    left = evalfiles.eta_s(s)
    return "estimating…" if left is None else eta_text(left)


def _headline(conditions: dict) -> None:
    """ACSA, G-mean, macro F1 and the rarest class's recall after GAN balancing, as the verdict speaks: the mean
    over the classifier seeds, in percent, with the difference from the imbalanced set in points."""
    base = conditions.get("imbalanced")
    after = conditions.get("gan") or next((v for k, v in conditions.items() if k.startswith("gan")), None)
    if not (base and after):
        return

    def mean(m: dict, key: str) -> float:
        sp = (m.get("spread") or {}).get(key) or {}
        if sp.get("mean") is not None:
            return float(sp["mean"])
        return float(m["minority"]["recall"] if key == "minority_recall" else m[key])

    cols = st.columns(4)
    for col, (key, label_, help_) in zip(cols, [
            ("acsa", "ACSA (balanced accuracy)", "The mean of the per-class recalls."),
            ("gmean", "G-mean", "The geometric mean of the per-class recalls."),
            ("macro_f1", "Macro F1", "The mean of the per-class F1 scores."),
            ("minority_recall", "Rarest-class recall",
             "Recall of the class with the fewest training images alone; every minority class's recall is in the "
             "per-class table below.")]):
        a, b = mean(after, key), mean(base, key)
        col.metric(label_, f"{pct(a)}%", f"{100 * (a - b):+.1f} points vs imbalanced", help=help_)
    n = ((after.get("spread") or {}).get("acsa") or {}).get("n")
    st.caption(f"After balancing with the GAN: means over {n or 1} classifier seed(s), as in the verdict and the "
               "table below.")


VERDICT_ICON = {"better": "✅", "worse": "❌", "within noise": "➖", "one seed: no spread": "❔"}


def balanced_name(condition: str, method: str) -> str:
    """"gan" -> "cagan-balanced", "gan_0.5" -> "cagan-balanced (ratio 0.5)"; other conditions as they are."""
    if condition == "gan":
        return f"{method}-balanced"
    if condition.startswith("gan_"):
        return f"{method}-balanced (ratio {condition[4:]})"
    return condition


def _verdict(m: dict) -> None:
    """One sentence per GAN condition against the best cheap fix and the untreated classifier, with its spread."""
    v = m.get("verdict") or {}
    if not v.get("conditions"):
        return
    st.subheader("Verdict")
    if note := verdict.unfinished_note(m.get("run") or {}):
        st.warning(note)
    n = (m.get("repeats") or {}).get("n", 1)
    st.markdown("A GAN earns its place when it beats the **cheapest fix**, not just the untreated classifier. "
                f"Best cheap fix here: **{v.get('best_baseline') or '—'}** (highest mean ACSA among the "
                f"baselines). Every number is a difference in points over {n} classifier seed(s).")
    method = (m.get("run") or {}).get("method") or "GAN"
    st.caption(f"*{method}-balanced*: the imbalanced training set topped up with images generated by this run's "
               f"{method} (the evaluation's condition `gan`).")
    for name, cv in v["conditions"].items():
        best = cv.get("best_baseline")
        word = (cv["vs"].get(best) or cv["vs"].get("imbalanced") or {}).get("acsa", {}).get("word", "")
        # The condition "gan" is named after the run's method, so "gan" never means two things (issue 23, 1).
        text = balanced_name(name, method) + cv["text"][len(name):]
        if word == "worse" or (best and word != "better"):
            st.warning(f"{text}. Balancing with this GAN did not beat the cheapest fix.",
                       icon=VERDICT_ICON.get(word))
        else:
            st.success(f"{text}.", icon=VERDICT_ICON.get(word))
        rows = [{"compared with": ref, "metric": label(metric), "difference (points)": 100 * j["diff"]
                 if j["diff"] is not None else None,
                 "± standard error": 100 * j["se"] if j.get("se") is not None else None, "verdict": j["word"]}
                for ref, per in cv["vs"].items() for metric, j in per.items()]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key=f"eval.verdict.{name}",
                     column_config={"difference (points)": st.column_config.NumberColumn(format="%+.1f"),
                                    "± standard error": st.column_config.NumberColumn(format="%.1f")})
    st.caption(f"The rule, declared before any number was seen: {v.get('rule', '')}")


def _results(res: dict, running: bool = False) -> None:
    m = res.get("metrics") or {}
    conditions = m.get("conditions") or {}
    if not conditions:
        return
    names = [str(c) for c in ((m.get("run") or {}).get("classes")
                              or range(len(next(iter(conditions.values()))["per_class"])))]
    _headline(conditions)
    _verdict(m)

    def mean_std(v: dict, key: str) -> tuple[float, float | None]:
        sp = (v.get("spread") or {}).get(key) or {}
        value = v["minority"]["recall"] if key == "minority_recall" else v[key]
        return (sp.get("mean", value), sp.get("std"))

    method = (m.get("run") or {}).get("method") or "GAN"
    rows = []
    for k, v in conditions.items():
        row = {"training set": balanced_name(k, method)}
        for key in ("accuracy", "acsa", "gmean", "macro_f1", "minority_recall"):
            row[key], row[f"{key} ±"] = mean_std(v, key)
        rows.append(row)
    summary = pd.DataFrame(rows)
    cols = _number_columns([c for c in summary.columns[1:] if not c.endswith(" ±")])
    cols.update({c: st.column_config.NumberColumn("± sd", help="standard deviation over the classifier seeds",
                                                  format="%.3f") for c in summary.columns if c.endswith(" ±")})
    st.dataframe(summary, hide_index=True, width="stretch", column_config=cols)
    st.caption("Means over the classifier seeds, each with its standard deviation; per-class charts and confusion "
               "matrices show the first seed.")

    st.subheader("Per class")
    c1, c2 = st.columns([1, 3])
    metric = c1.radio("Metric", ["f1", "recall", "precision"], key="eval.metric",
                      format_func={"f1": "F1", "recall": "recall", "precision": "precision"}.get)
    default = [c for c in ("imbalanced", "gan", "full") if c in conditions] or list(conditions)[:2]
    # Keyed by the conditions available: as the evaluation adds conditions, the choice starts again from
    # the default (imbalanced, gan, full) instead of keeping the one condition there was at first.
    shown = c2.multiselect("Training sets", list(conditions), default=default,
                           key="eval.shown." + "|".join(conditions))
    if shown:
        st.plotly_chart(charts.per_class_figure(conditions, names, metric, shown), key="eval.perclass")

    st.subheader("Confusion matrices")
    before = "imbalanced" if "imbalanced" in conditions else list(conditions)[0]
    after = next((k for k in conditions if k.startswith("gan")), None)
    left, right = st.columns(2)
    left.plotly_chart(charts.confusion_figure(conditions[before]["confusion"], names, f"before: {before}"),
                      key="eval.cm.before")
    if after is not None:
        right.plotly_chart(charts.confusion_figure(conditions[after]["confusion"], names, f"after: {after}"),
                           key="eval.cm.after")
    elif running:
        right.info("After: the classifier trained on the GAN-balanced set is not finished yet; its confusion "
                   "matrix appears here when it is.")
    else:
        right.info("After: this evaluation has no GAN-balanced training set (no generated images, or "
                   "'gan' was not among the training sets).")

    tsne = res.get("tsne")
    if tsne is not None:
        st.subheader("t-SNE of classifier features")
        st.caption("Features from a reference classifier trained on the full real set; crosses are generated "
                   "images, faint points the test set. One map: the left panel is the right one without the "
                   "generated images, so every real image sits at the same place in both.")
        left, right = st.columns(2)
        tn = [str(c) for c in tsne["classes"]]
        kind, lab = np.asarray(tsne["kind"]), np.asarray(tsne["labels"])
        real = kind != 1
        left.plotly_chart(charts.tsne_figure(np.asarray(tsne["xy_before"])[real], lab[real], kind[real], tn,
                                             "before: imbalanced training set"), key="eval.tsne.before")
        right.plotly_chart(charts.tsne_figure(np.asarray(tsne["xy_after"]), lab, kind, tn,
                                              "after: with generated images"), key="eval.tsne.after")

    if res.get("quality"):
        st.subheader("Generated-image quality (BAGAN §5.1)")
        qm = m.get("quality") or {}
        st.caption("Class accuracy of generated images under the reference classifier; SSIM between pairs of "
                   "images of a class (lower = more diverse), for generated and for real images; SSIM to the "
                   "nearest real training image (high = memorised); domain FID on the reference classifier's "
                   f"features (not comparable with Inception FID). FID's real side: the "
                   f"{qm.get('fid_real', 'test split')} (held-out real images), matched class for class; per-class "
                   "FID is biased upwards at small image counts, so each comes with its image count.")
        q = pd.DataFrame(res["quality"])
        st.dataframe(q, hide_index=True, width="stretch",
                     column_config={"class": st.column_config.TextColumn(label("class")),
                                    **_number_columns([c for c in q.columns if c != "class"])})


def _downloads(res: dict | None) -> None:
    st.subheader("Downloads")
    d = run.dir
    npz, zipf = d / "balanced.npz", d / "balanced.zip"
    c1, c2, c3, c4 = st.columns(4)
    # on_click="ignore": a download does not rerun the page. A rerun re-registered every button's deferred
    # file, so a second download clicked within a second pointed at a file that was gone (issue 23, 5).
    if npz.exists() and zipf.exists():
        c1.download_button("Balanced set (.npz)", data=npz.read_bytes, file_name=f"{run.id}-balanced.npz",
                           key="dl.npz", on_click="ignore")
        c2.download_button("Balanced set (.zip of PNGs)", data=zipf.read_bytes, file_name=f"{run.id}-balanced.zip",
                           key="dl.zip", on_click="ignore")
    elif _balancing():
        c1.info("Preparing the balanced set… the downloads appear here when it is ready.")
    elif c1.button("Prepare the balanced set", key="dl.prepare",
                   help="Generates the images that bring every class up to the largest, in the background."):
        st.session_state[_BALANCING] = runs.launch_cli(["balance", str(d), "--zip"], d / "log.txt")
        st.rerun()  # the whole page, so the panel below starts polling for the files
    if st.session_state.get(_BALANCE_FAILED):
        st.warning("Preparing the balanced set failed; the end of the run's log:")
        st.code(runs.log_tail(d) or "(the log is empty)", language=None)
    c3.download_button("Checkpoint", data=(d / "checkpoint.pt").read_bytes, file_name=f"{run.id}-checkpoint.pt",
                       key="dl.ckpt", on_click="ignore")
    if res and (d / "eval" / "report.csv").exists():
        c4.download_button("Report (.csv)", data=(d / "eval" / "report.csv").read_bytes,
                           file_name=f"{run.id}-report.csv", mime="text/csv", key="dl.csv", on_click="ignore")


_BALANCING, _BALANCE_FAILED = f"eval.balancing.{run.id}", f"eval.balance_failed.{run.id}"


def _balancing() -> bool:
    """Whether a balanced-set build launched from this page is still on its way (its files not there yet)."""
    pid = st.session_state.get(_BALANCING)
    if not pid:
        return False
    if (run.dir / "balanced.npz").exists() and (run.dir / "balanced.zip").exists():
        del st.session_state[_BALANCING]
        return False
    if not runs.pid_alive(pid):  # ended without its files
        del st.session_state[_BALANCING]
        st.session_state[_BALANCE_FAILED] = True
        return False
    st.session_state.pop(_BALANCE_FAILED, None)
    return True


def _active(res: dict | None) -> bool:
    """Something this page waits for: an evaluation running, or a balanced set being prepared."""
    return (bool(res) and res["status"].get("state") in runs.ACTIVE) or _balancing()


active = _active(evalfiles.read_evaluation(run.dir))


@st.fragment(run_every=live.REFRESH_S if active else None)
def panel() -> None:
    res = evalfiles.read_evaluation(run.dir)
    if res is None:
        st.info("This run has not been evaluated yet: choose the settings above and launch the evaluation.")
    else:
        s = res["status"]
        state = s.get("state")
        if state in runs.ACTIVE:
            st.progress(float(s.get("progress") or 0.0),
                        text=f"{s.get('phase') or 'starting'} · ETA {_eta(s)}")
            if st.button("Stop evaluation", key="eval.stop"):
                evaluate.stop_evaluation(run.dir)
                st.rerun()
        elif state == "failed":
            st.error(f"The evaluation failed: {s.get('error') or 'no reason recorded'}")
            st.code(runs.log_tail(run.dir / "eval") or "(the log is empty)", language=None)
        elif state == "stopped":
            st.warning("The evaluation was stopped; what it finished is shown below.")
        _results(res, running=state in runs.ACTIVE)
    _downloads(res)
    if active and not _active(res):
        st.rerun()  # what the page waited for has landed: redraw once, without the timer


panel()
