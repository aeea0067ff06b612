"""Widgets that build an imbagan config: data, imbalance and method, with the paper's defaults."""

from __future__ import annotations

import dataclasses
import os
import re

import streamlit as st

from imbagan import budgets, catalog, splits
from imbagan import data as datasets
from imbagan.config import CHOICES, DATA_FIELDS, FIELD_HELP, TrainConfig
from imbagan.imbalance import PROFILES
from ui import taxonomy
from ui.labels import FIELD_LABELS, field_label

DEFAULTS = TrainConfig()
DROP_LEVELS = [40.0, 60.0, 80.0, 90.0, 95.0, 97.5]  # BAGAN §5
IR_MAX = 1000.0  # the imbalance ratio box's largest value

PROFILE_HELP = {
    "none": "Keep every image (the balanced original).",
    "drop": "One or more minority classes keep (100 − p)% of their images (BAGAN §5).",
    "binary": "Two classes only; the minority is cut to majority / IR (AGGAN §5).",
    "step": "GAMO / DeepSMOTE per-class counts at IR 100, rescaled to the IR asked (10 classes).",
    "longtail": "Exponential decay n_max · IR^(−i/(C−1)) (CIFAR-10-LT style).",
    "bagan_gp": "Class c keeps its first 100·c images, class 0 keeps all (BAGAN-GP's tables).",
    "custom": "Your own count for every class.",
}

COMMON_FIELDS = ["steps", "batch_size", "latent_dim", "lr", "beta1", "beta2", "width", "seed"]


@st.cache_data(ttl=300, show_spinner=False)
def _quality_tables() -> list[dict]:
    """The Taxonomy page's quality tables (bench/results), for what an option did to a method."""
    return taxonomy.quality_tables(taxonomy.RESULTS)


def paper_defaults(method: str) -> dict:
    """The settings of a method's paper (or official code), from its card."""
    return dict(catalog.card(method).paper_defaults)


@st.cache_data(show_spinner="Reading the dataset's labels…", max_entries=16)
def _preview(cfg_dict: dict) -> tuple[list[str], list[int], list[int]]:
    return splits.imbalance_preview(TrainConfig.from_dict(cfg_dict))


def preview(cfg: TrainConfig) -> tuple[list[str], list[int], list[int]]:
    """(class names, available per class, kept per class); errors propagate as ValueError/FileNotFoundError."""
    return _preview({k: getattr(cfg, k) for k in DATA_FIELDS})


def data_widgets(key: str = "cfg", defaults: dict | None = None) -> dict:
    """Dataset and imbalance widgets; returns TrainConfig fields."""
    d = {**DEFAULTS.flat(), **(defaults or {})}
    names = list(datasets.DATASETS)
    ds = st.selectbox("Dataset", names, index=names.index(d["dataset"]), key=f"{key}.dataset",
                      format_func=lambda n: datasets.DATASETS[n].title,
                      help="digits ships with scikit-learn (no download); the others read a data folder.")
    out: dict = {"dataset": ds}
    info = datasets.DATASETS[ds]
    st.caption(info.description)
    if info.needs_root:
        root = st.text_input("Data folder", value=d.get("data_root") or os.environ.get(datasets.DEFAULT_ROOT_ENV, ""),
                             key=f"{key}.root", placeholder="e.g. ../shared/datasets",
                             help="The folder holding the dataset's files; defaults to $IMBAGAN_DATA or ./data.")
        out["data_root"] = root.strip() or None
    if ds == "imagefolder":
        c1, c2 = st.columns(2)
        sizes = [16, 28, 32, 64]
        out["image_size"] = c1.selectbox("Image size", sizes, index=sizes.index(d.get("image_size") or 32),
                                         key=f"{key}.size")
        out["channels"] = c2.selectbox("Channels", [1, 3], index=0 if d.get("channels") == 1 else 1,
                                       key=f"{key}.channels", format_func=lambda c: "grey" if c == 1 else "RGB")
    prof = st.selectbox("Imbalance", PROFILES, index=PROFILES.index(d["imbalance"]), key=f"{key}.imbalance",
                        help="How the training set is made imbalanced; the test set stays balanced.")
    st.caption(PROFILE_HELP.get(prof, ""))
    out["imbalance"] = prof
    if prof in ("binary", "step", "longtail"):
        # No bounds on the widget: a bounded box keeps an out-of-range number red and silently unapplied.
        # Here a bad value gets a sentence, and the last good ratio stays in use.
        ir = float(st.number_input("Imbalance ratio (largest / smallest class)", value=float(d["ir"]), step=1.0,
                                   key=f"{key}.ir", help=f"From 1 (balanced) to {IR_MAX:,.0f}."))
        good = st.session_state.get(f"{key}.ir_good", float(d["ir"]))
        if 1.0 <= ir <= IR_MAX:
            st.session_state[f"{key}.ir_good"] = good = ir
        else:
            st.error(f"The imbalance ratio must lie between 1 (balanced) and {IR_MAX:,.0f}: {ir:g} is "
                     f"{'below 1' if ir < 1 else 'too large'}. Still using {good:g}.")
        out["ir"] = good
    if prof == "drop":
        out["drop"] = float(st.select_slider("Percent of the minority class dropped", DROP_LEVELS,
                                             value=d["drop"] if d["drop"] in DROP_LEVELS else 97.5, key=f"{key}.drop"))
        out["minority"] = tuple(st.multiselect("Minority class(es)", list(range(10)), default=list(d["minority"]),
                                               key=f"{key}.minority") or [0])
    if prof == "binary":
        c1, c2 = st.columns(2)
        out["majority"] = int(c1.number_input("Majority class", 0, 9, int(d["majority"]), key=f"{key}.majority"))
        out["minority"] = (int(c2.number_input("Minority class", 0, 9, int(d["minority"][0]), key=f"{key}.minor1")),)
    if prof == "custom":
        txt = st.text_input("Images per class, comma-separated", value=", ".join(map(str, d["counts"])) or "100, 50, 20",
                            key=f"{key}.counts")
        try:
            out["counts"] = tuple(int(v) for v in txt.replace(" ", "").split(",") if v)
        except ValueError:
            st.error("Counts must be whole numbers separated by commas, e.g. 100, 50, 20.")
            out["counts"] = ()
    return out


def _field_widget(name: str, value, key: str, spec: dict | None = None):
    """One config field's widget; ``spec``, for a method's own setting, is its card's (choices, help, bounds)."""
    spec = spec or {}
    label = field_label(name)
    help_ = spec.get("help") or FIELD_HELP.get(name)
    choices = spec.get("choices") or CHOICES.get(name)
    if choices:
        opts = list(choices)
        return st.selectbox(label, opts, index=opts.index(value) if value in opts else 0, key=key, help=help_)
    if isinstance(value, bool):
        return st.checkbox(label, value=value, key=key, help=help_)
    if isinstance(value, int):
        return int(st.number_input(label, value=int(value), min_value=int(spec.get("min", 0)), step=1, key=key,
                                   help=help_))
    if isinstance(value, float):
        return float(st.number_input(label, value=float(value), format="%g", key=key, help=help_))
    if isinstance(value, tuple):
        txt = st.text_input(label + " (comma-separated class ids; empty = rarest)", ", ".join(map(str, value)),
                            key=key, help=help_)
        return tuple(int(v) for v in txt.replace(" ", "").split(",") if v.strip().isdigit())
    return st.text_input(label, str(value), key=key, help=help_)


def _forget_fields(prefix: str) -> None:
    """A new preset refills the method's fields: drop what they held (the preset selector keeps its choice)."""
    for k in [k for k in st.session_state if str(k).startswith(prefix) and not str(k).endswith(".preset")]:
        del st.session_state[k]


def method_widgets(key: str = "cfg", defaults: dict | None = None, data: dict | None = None) -> dict:
    """Method choice and its hyper-parameters, pre-filled with the paper's defaults and, for the dataset in
    ``data`` (data_widgets' fields), the method's measured budget; says when the steps fall below it."""
    d = {**DEFAULTS.flat(), **(defaults or {})}
    cards = catalog.methods()
    names = list(cards)
    method = st.selectbox("Method", names, index=names.index(d["method"]) if d["method"] in names else 0,
                          key=f"{key}.method", format_func=lambda m: cards[m].title or m)
    card = cards[method]
    if card.summary:
        st.caption(card.summary)
    # The paper's settings first, then a named preset of the method, then whatever the page handed over.
    fam = budgets.family((data or d)["dataset"], (data or {}).get("image_size"), (data or {}).get("channels"))
    d = {**d, **card.setting_defaults(), **paper_defaults(method)}
    measured = budgets.measured(method, fam)
    if measured:
        d["steps"] = int(measured["steps"])
    if st.session_state.get(f"{key}.{method}.steps_family") != fam:
        # steps belong to the dataset family: another family starts from its own measured budget
        st.session_state.pop(f"{key}.{method}.steps", None)
        st.session_state[f"{key}.{method}.steps_family"] = fam
    if card.presets:
        choice = st.selectbox("Preset", ["paper defaults", *card.presets], key=f"{key}.{method}.preset",
                              on_change=_forget_fields, args=(f"{key}.{method}.",),
                              help="Named settings of this method; every field below stays editable.")
        d.update(card.presets.get(choice, {}))
    d.update(defaults or {} if (defaults or {}).get("method") == method else {})
    if card.defaults_source:
        st.caption(f"Defaults from {card.defaults_source}.")
    out: dict = {"method": method}
    fields = [f for f in COMMON_FIELDS + list(card.settings) + list(card.fields) if f in d]
    cols = st.columns(3)
    shown = 0
    for f in fields:
        if not card.applies(f, {**d, **out}):  # e.g. no gradient-penalty weight for a least-squares loss
            out[f] = d[f]
            continue
        with cols[shown % 3]:
            out[f] = _field_widget(f, d[f], f"{key}.{method}.{f}", card.settings.get(f))
        shown += 1
    text, below = budgets.note(method, (data or d)["dataset"], int(out.get("steps") or d["steps"]),
                               (data or {}).get("image_size"), (data or {}).get("channels"))
    (st.warning if below else st.caption)(text)
    for sentence in taxonomy.option_evidence(_quality_tables(), method, out, (data or d)["dataset"]):
        st.info(sentence)
    with st.expander("Loop and device"):
        c = st.columns(3)
        # (evaluate_after is the page's "Evaluate it too" box, beside Launch)
        for i, f in enumerate(["sample_every", "tick_every", "checkpoint_every", "samples_per_class", "device",
                               "precision", "quality_curve", "stop_when"]):
            with c[i % 3]:
                out[f] = _field_widget(f, d[f], f"{key}.loop.{f}")
    return out


def build_config(fields: dict) -> tuple[TrainConfig | None, str | None]:
    """A TrainConfig from widget values, or the sentence saying what is wrong, in the form's words: a config
    key in the library's sentence ("batch_size must be at least 2") becomes its label ("Batch size ...")."""
    try:
        return TrainConfig.from_dict(fields), None
    except (ValueError, TypeError) as e:
        msg = str(e)
        # Only names no sentence uses as a plain word ("steps" or "seed" may be English).
        for name in sorted((n for n in FIELD_LABELS if "_" in n or n in ("lr", "beta1", "beta2")), key=len,
                           reverse=True):
            msg = re.sub(rf"\b{name}\b", f"“{field_label(name)}”", msg)
        return None, msg


# Sentences of the library's messages that speak to the command line (flags, Python arguments).
_CLI_SENTENCE = re.compile(r"[^.]*(--data-root|download=True|IMBAGAN_DATA)[^.]*\.\s*")


def page_error(e: BaseException | str) -> str:
    """A library error as the page says it: the command-line advice becomes a pointer to the Data folder field."""
    msg = str(e)
    cleaned = _CLI_SENTENCE.sub("", msg).strip()
    if cleaned == msg.strip():
        return msg
    return (cleaned + " Type the folder that holds the files in the *Data folder* field (or start the app with "
            "IMBAGAN_DATA set to it).")
