"""Data for the Taxonomy page: the survey's taxonomy of imbalance, its Tables 1 and 3, and Train presets.

Source: Sampath et al., "A Survey on Generative Adversarial Networks for imbalance problems in computer
vision tasks" (/work/shared/papers/survey-gans-for-imbalance-in-cv.txt): §4 (taxonomy), Table 1 (GAN
variants, §3.1), Table 3 (methods, §5). The explanations are ours; the table rows are transcribed from the
survey's text extraction, with the reference numbers it prints.
"""

from __future__ import annotations

from pathlib import Path

from ui.labels import pct

# The committed bench tables (bench/results) that the Taxonomy page and the Train form read.
RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results"

SURVEY = ("Sampath, Maurtua, Aguilar Martín, Gutierrez: A Survey on Generative Adversarial Networks for "
          "imbalance problems in computer vision tasks")

# --- the taxonomy (survey §4, Fig. 2) -----------------------------------------------------------------
# level -> (task, our short explanation, {imbalance type: our explanation})
LEVELS: dict[str, dict] = {
    "Image level": {
        "task": "classification",
        "section": "§4.1",
        "summary": (
            "Each image carries one label, and the labels are unevenly represented. A classifier trained on "
            "such data is rewarded for guessing the common labels, so the rare ones get few correct answers. "
            "A GAN can act as a smarter oversampler: instead of repeating or interpolating the rare images, "
            "it learns what they look like and draws new ones."
        ),
        "types": {
            "Inter-class": (
                "Whole classes differ in size: the minority class has far fewer images than the majority. "
                "The imbalance ratio (IR) is the majority count divided by the minority count; the survey's "
                "extreme example is 1:1000. This is the case every method in imbagan targets, and the "
                "`binary` profile reproduces its simplest form: two digits, one cut to majority / IR."
            ),
            "Intra-class": (
                "The classes may be balanced, but inside one class some variations are rare: a pose, a "
                "colour, an attribute (glasses, a beard), a breed of dog. The sub-groups are usually not "
                "labelled, so the survey's methods either cluster images in a feature space and condition "
                "the generator on the cluster (Clustering + GAN), or edit attributes of existing images "
                "(AttGAN, IcGAN, ...), or change the pose or camera style (person and vehicle "
                "re-identification). imbagan has no sub-class labels, so this type is described, not trained."
            ),
            "Multi-class": (
                "With more than two classes the imbalance can take several shapes: a few rare classes "
                "among many common ones, many rare classes and a few common ones, or many of both. The "
                "survey notes these are harder than the binary case, because there are many "
                "minority/majority pairs at once. imbagan's `drop`, `step` and `longtail` profiles build "
                "each shape from a balanced dataset."
            ),
        },
    },
    "Object level": {
        "task": "object detection",
        "section": "§4.2",
        "summary": (
            "A detector sees boxes, not whole images, and the boxes themselves are skewed: tiny objects are "
            "common but cover hardly any pixels, heavily occluded objects are rare, and almost every "
            "candidate location is background. GANs help either by synthesising the rare cases (small, "
            "occluded or pasted-in objects) or by acting as an adversary that makes features harder for "
            "the detector during training."
        ),
        "types": {
            "Object scale": (
                "Small objects are numerous but tiny. In MS COCO (survey Table 2) objects under 32x32 pixels "
                "are 41.43% of all objects yet 1.23% of the object area; large ones (over 96x96) are 24.24% "
                "of the objects and 88.59% of the area. Super-resolution GANs (Perceptual GAN, SOD-MTGAN) "
                "upscale small objects' features; Detector GAN inserts extra small objects."
            ),
            "Occlusion and deformation": (
                "Objects hidden behind others, or bent into unusual shapes, appear in skewed proportions "
                "(some occlusions are common, others almost never occur). Adversarial-Fast-RCNN learns to "
                "drop out and warp feature maps so that the detector trains on the hard cases."
            ),
            "Foreground-background": (
                "A detector scores some 10^4 to 10^5 locations per image, and only a handful contain an "
                "object. Instead of hard-example mining, GAN methods inject hard positive examples "
                "(task-aware synthesis) or swap objects between images (PSIS, Gene-GAN)."
            ),
        },
    },
    "Pixel level": {
        "task": "segmentation",
        "section": "§4.3",
        "summary": (
            "Every pixel gets a label, and some labels cover far more pixels than others: road and sky "
            "dwarf cyclists in street scenes, healthy tissue dwarfs a tumour in an MRI. Reweighted losses "
            "(weighted cross-entropy, focal, Dice, Tversky) are the classic answer; the surveyed GAN methods "
            "add an adversarial term or synthesise new, rebalanced label maps."
        ),
        "types": {
            "Pixel-wise class imbalance": (
                "Rare labels cover few pixels. Examples from the survey: Pix2pix HD renders recombined, "
                "rebalanced label maps as new training images (up to 5.5% better accuracy on a class of "
                "Cityscapes); ScGAN tunes a sensitivity weight for shadow pixels; Voxel GAN mixes an "
                "adversarial loss with weighted losses for brain tumours."
            ),
            "Occlusion": (
                "In dense scenes objects hide each other, so the parts a segmenter must infer are rarely "
                "seen whole. SeGAN predicts the hidden part's mask and paints its appearance; "
                "Occlusion-Aware GAN removes occluders such as masks or microphones from faces."
            ),
        },
    },
}

# The app's own datasets illustrating each image-level type: (label, TrainConfig data fields).
ILLUSTRATIONS: dict[str, list[tuple[str, dict]]] = {
    "Inter-class": [
        ("binary: digit 1 (majority) vs digit 0, IR 10",
         {"dataset": "digits", "imbalance": "binary", "majority": 1, "minority": (0,), "ir": 10.0}),
    ],
    "Multi-class": [
        ("few minority, many majority: drop 97.5% of digit 0 (BAGAN §5)",
         {"dataset": "digits", "imbalance": "drop", "drop": 97.5, "minority": (0,)}),
        ("many minority, few majority: step profile, IR 10 (GAMO / DeepSMOTE shape)",
         {"dataset": "digits", "imbalance": "step", "ir": 10.0}),
        ("many minority, many majority: drop 90% of digits 5-9",
         {"dataset": "digits", "imbalance": "drop", "drop": 90.0, "minority": (5, 6, 7, 8, 9)}),
    ],
}

# --- survey Table 3: GANs for the imbalance problems in computer vision -----------------------------
# (category, imbalance type, study, application). One row of the extraction was split over two lines
# (task-aware synthetic data generation [217]); it is joined here. The printed reference numbers are kept
# as printed, including two that differ from the text (ScGAN is [221] in §4.3, SD-GAN is [161] in §4.1).
TABLE3_COLUMNS = ["category", "imbalance type", "study", "application"]
_BIN, _MULTI, _DET, _SEG = "Binary classification", "Multi-class classification", "Object detection", "Segmentation"
_INTER, _INTRA = "Inter-class imbalance", "Intra-class imbalance"
_FEW, _MANY = "Few minority-many majority", "Many majority-many minority"
TABLE3: list[tuple[str, str, str, str]] = [
    (_BIN, _INTER, "DCGAN [149]", "Malaria disease classification"),
    (_BIN, _INTER, "SDGAN [150]", "Industrial defect classification"),
    (_BIN, _INTER, "BAGAN [151]", "Image classification"),
    (_BIN, _INTER, "CiGAN [152]", "Mammogram classification"),
    (_BIN, _INTER, "CycleGAN [154]", "Mammogram classification"),
    (_BIN, _INTER, "DCGAN [231]", "Mammogram classification"),
    (_BIN, _INTER, "CovidGAN [156]", "Covid19 classification"),
    (_BIN, _INTRA, "Clustering + GAN [160]", "Imbalanced intra class classification"),
    (_BIN, _INTRA, "Semantically decomposed GAN [232]", "Imbalanced intra class classification"),
    (_BIN, _INTRA, "VAE + GAN [112]", "Facial attribute editing"),
    (_BIN, _INTRA, "AttGAN [63]", "Facial attribute editing"),
    (_BIN, _INTRA, "IcGAN [64]", "Facial attribute editing"),
    (_BIN, _INTRA, "ResAttr-GAN [65]", "Facial attribute editing"),
    (_BIN, _INTRA, "ARU-net [167]", "Facial attribute editing"),
    (_BIN, _INTRA, "SaGAN [168]", "Facial attribute editing"),
    (_BIN, _INTRA, "PN-GAN [173]", "Person re-identification"),
    (_BIN, _INTRA, "PTGAN [174]", "Person re-identification"),
    (_BIN, _INTRA, "CycleGAN [175]", "Person re-identification"),
    (_BIN, _INTRA, "SPGAN [176]", "Person re-identification"),
    (_BIN, _INTRA, "FDGAN [177]", "Person re-identification"),
    (_BIN, _INTRA, "Cross view GAN [179]", "Vehicle re-identification"),
    (_BIN, _INTRA, "DCGAN [180]", "Vehicle re-identification"),
    (_BIN, _INTRA, "F-CGAN [181]", "Fine grained classification"),
    (_BIN, _INTRA, "DCGAN + Fine grained Classifier [185]", "Fine grained classification"),
    (_BIN, _INTRA, "General-to-Detailed GAN [187]", "Fine grained classification"),
    (_MULTI, _FEW, "Cycle GAN [194]", "Emotion classification"),
    (_MULTI, _FEW, "DCGAN [195]", "Weather classification"),
    (_MULTI, _FEW, "DCGAN + Ensemble learning [196]", "Weather classification"),
    (_MULTI, _FEW, "DCGAN [190]", "Chest pathology classification"),
    (_MULTI, _FEW, "DCGAN [197]", "Liver lesion classification"),
    (_MULTI, "Many majority-few minority", "DCGAN [198]", "Skin lesion classification"),
    (_MULTI, _MANY, "Cycle-GAN [189]", "Plant disease classification"),
    (_MULTI, _MANY, "WGAN-GP [200]", "Multi class classification"),
    (_MULTI, _MANY, "CE-GAN [203]", "Multi class classification"),
    (_DET, "Object scale imbalance", "Perceptual GAN [206]", "Traffic sign detection"),
    (_DET, "Object scale imbalance", "SOD-MTGAN [211]", "Small object detection system"),
    (_DET, "Object scale imbalance", "Detector GAN [207]", "Pedestrian and disease detection"),
    (_DET, "Imbalance due to occlusions and deformations", "Adversarial-Fast-RCNN [214]", "Occluded object detection"),
    (_DET, "Imbalance due to occlusions and deformations", "Adversarial Occlusion-aware Face Detector [215]",
     "Occluded face detection"),
    (_DET, "Imbalance due to occlusions and deformations", "Cut-Paste GAN [216]", "Occluded object detection"),
    (_DET, "Foreground-background object class imbalance", "Task-aware synthetic data generation [217]",
     "Object detection"),
    (_DET, "Foreground-background object class imbalance", "Gene-GAN [219]", "Object detection"),
    (_DET, "Foreground-background object class imbalance", "PSIS [218]", "Object detection"),
    (_SEG, "Pixel-wise imbalance", "Sensitivity conditional GAN [115]", "Shadow detection"),
    (_SEG, "Pixel-wise imbalance", "Pix2pix HD GAN [140]", "Imbalanced pedestrian image segmentation"),
    (_SEG, "Pixel-wise imbalance", "Voxel GAN [224]", "Brain tumor segmentation"),
    (_SEG, "Pixel-wise imbalance", "GAN + ensemble learning [226]", "Medical image semantic segmentation"),
    (_SEG, "Pixel-wise imbalance", "GAN + Weighted categorical loss [225]", "Heart image segmentation"),
    (_SEG, "Imbalance due to occlusions", "SeGAN [229]", "Invisible part generation and segmentation"),
    (_SEG, "Imbalance due to occlusions", "Occlusion-Aware GAN [230]", "Occlusion free image generation"),
]
TABLE3_NOTE = (
    "Transcribed from the survey's Table 3 as extracted to text. One row was split over two lines there "
    "(task-aware synthetic data generation [217]) and is joined here; the 'Many majority- Few minority' "
    "row is kept as printed. Reference numbers are the table's own: the text cites ScGAN as [221] and "
    "SD-GAN as [161]. The survey files intra-class methods under binary classification."
)

# --- survey Table 1: GAN variants (§3.1) ----------------------------------------------------------
TABLE1_COLUMNS = ["category", "GAN", "main architectural contribution"]
TABLE1: list[tuple[str, str, str]] = [
    ("Basic GAN", "GAN [66]", "Multi-layer perceptrons in the generator and discriminator"),
    ("Convolutional based", "DCGAN [109]", "Convolutional and transposed-convolutional layers in D and G"),
    ("Convolutional based", "PROGAN [128]", "Grows the layers of G and D progressively during training"),
    ("Condition based", "cGAN [115]", "Controls the kind of image generated with prior information"),
    ("Condition based", "ACGAN [116]", "A classification loss beside the adversarial loss to recover class labels"),
    ("Condition based", "VACGAN [117]", "Moves ACGAN's classifier loss to a separate classifier network beside D"),
    ("Condition based", "infoGAN [118]",
     "Disentangled latent code by maximising mutual information between code and image"),
    ("Condition based", "SCGAN [119]", "Disentangled latent code through a similarity constraint on G"),
    ("Latent representation based", "DEGAN [113]",
     "A pretrained VAE decoder/encoder turns Gaussian noise into an input carrying the images' structure"),
    ("Latent representation based", "VAEGAN [112]", "Combines a VAE and a GAN"),
    ("Latent representation based", "AAE [110]", "A discriminator on the autoencoder's latent space"),
    ("Latent representation based", "VEEGAN [114]",
     "A reconstruction network inverting G, against mode collapse"),
    ("Latent representation based", "BiGAN [111]", "An encoder learning the inverse map from data to latent space"),
    ("Stack of GANs", "LAPGAN [129]", "A Laplacian pyramid of GANs that adds image detail level by level"),
    ("Stack of GANs", "MADGAN [132]", "Several generators that cover different modes of the data"),
    ("Stack of GANs", "D2GAN [131]", "Two discriminators, against mode collapse"),
    ("Stack of GANs", "CycleGAN [134]", "Two generators and two discriminators for unpaired image translation"),
    ("Stack of GANs", "CoGAN [133]", "Two GANs that learn a joint distribution of two image domains"),
    ("Other variants", "SAGAN [138]", "Self-attention for long-range dependencies"),
    ("Other variants", "GRAN [130]", "A recurrent generator trained adversarially"),
    ("Other variants", "SRGAN [136]", "Very deep residual convolutional layers for super-resolution"),
]
TABLE1_NOTE = ("The survey's Table 1 (GAN variants of §3.1), legible in the text extraction; the contributions "
               "are paraphrased.")


# --- bench/quality.py's tables (the "Try it in imbagan" tab) -----------------------------------------
QUALITY_COLUMNS = ("method", "options", "precision", "class_acc_min", "ssim_gen", "ssim_real", "nn_ssim_gen",
                   "nn_ssim_real", "domain_fid", "clf_steps", "recall_imbalanced", "recall_gan", "recall_full",
                   "acsa_imbalanced", "acsa_gan", "acsa_full")


def quality_tables(folder) -> list[dict]:
    """The newest ``quality-*.csv`` table of each scenario in ``folder``: those covering more methods
    first, then the newest.

    A table's scenario is its ``scenario`` column (older tables: dataset and imbalance); when two files
    hold one scenario, the one with the later ``date`` wins. Each entry: {"scenario", "dataset", "table" (the
    columns of QUALITY_COLUMNS it has), "source" (the CSV as read, on the table's index), "caption" (budget, date,
    machine, load), "path"}.
    """
    import pandas as pd

    best: dict[str, tuple[str, Path, "pd.DataFrame"]] = {}
    for path in sorted(Path(folder).glob("quality-*.csv")):
        try:
            q = pd.read_csv(path)
        except (OSError, ValueError):
            continue
        if q.empty or "method" not in q.columns:
            continue
        first = q.iloc[0]
        name = str(first["scenario"]) if "scenario" in q.columns else f"{first.get('dataset')} {first.get('imbalance')}"
        date = str(q["date"].max()) if "date" in q.columns else ""
        if name not in best or date > best[name][0]:
            best[name] = (date, path, q)
    out = []
    # Tables that cover more methods first (they answer "which method to try"), then the newest.
    order = sorted(best.items(), key=lambda kv: (kv[1][2]["method"].nunique(), kv[1][0]), reverse=True)
    for name, (date, path, q) in order:
        first = q.iloc[0]
        loads = q["load_avg"].dropna() if "load_avg" in q.columns else []
        load = (f"{loads.min():g}–{loads.max():g}" if len(loads) and loads.min() != loads.max()
                else (f"{loads.iloc[0]:g}" if len(loads) else "?"))
        options = sorted(set(q["options"].astype(str))) if "options" in q.columns else ["none"]
        # Rows appended by another bench run (e.g. bench/quality.py --from-runs) may carry their own budget text.
        budget = " | ".join(dict.fromkeys(q["budget"].astype(str))) if "budget" in q.columns else "unknown"
        # Rows from another machine (bench/gpu_session.sh's GPU rows beside CPU ones) name it too.
        machines = " | ".join(dict.fromkeys(q["machine"].astype(str))) if "machine" in q.columns else "?"
        caption = (f"{name} · options {', '.join(options)} · budget {budget} · measured {date} on "
                   f"{machines} (load average {load})")
        table = q[[c for c in QUALITY_COLUMNS if c in q.columns]].copy()
        dataset = str(first.get("dataset") or name.split()[0])
        table.insert(1, "trained", [trained_text(m, dataset, s) for m, s in zip(q["method"], q.get("steps", [None] * len(q)))])
        converged = sum(t.startswith("converged") for t in table["trained"])
        out.append({"scenario": name, "dataset": dataset, "table": table, "source": q, "caption": caption, "path": path,
                    "converged_rows": converged, "rows": len(table)})
    # Tables whose GANs reached their measured budgets first (only they say something about the methods); among
    # equals the order above (more methods, then newer) stays: sorted() is stable.
    return sorted(out, key=lambda t: t["converged_rows"] / max(1, t["rows"]), reverse=True)


def answer(tables: list[dict]) -> str | None:
    """The one-line answer above the tables (issue 23, 15): per scenario, what each method trained to its
    measured budget did to the untreated classifier's ACSA and rarest-class recall; None without such rows."""
    parts = []
    for t in tables:
        q = t["table"]
        ok = q[q["trained"].str.startswith("converged")] if "trained" in q.columns else q.iloc[0:0]
        if "options" in ok.columns:
            ok = ok[ok["options"].astype(str) == "none"]
        need = {"acsa_gan", "acsa_imbalanced", "recall_gan", "recall_imbalanced"}
        if ok.empty or not need <= set(ok.columns):
            continue
        src = t.get("source")
        if src is not None and "steps" in src.columns:
            # One row a method: the one closest to its budget (a longer run of it is a check, not the answer).
            ok = ok.join(src["steps"]).sort_values("steps", kind="stable").drop_duplicates("method")
        ok = ok.sort_values("acsa_gan", ascending=False)
        # Rows from another machine or torch build carry their own untreated classifier: the most common one heads
        # the clause (on a tie, the best row's), and a row whose own differs names it.
        untreated = ok["acsa_imbalanced"].round(4)
        counts = untreated.value_counts()
        head = next(u for u in untreated if counts[u] == counts.max())
        first = ok[untreated == head].iloc[0]
        said = [f"{r['method']} {pct(r['acsa_gan'])}% (rarest class recall {r['recall_gan']:.2f}"
                + ("" if u == head else
                   f"; beside its own untreated classifier, {pct(r['acsa_imbalanced'])}%")
                + ")" for (_, r), u in zip(ok.iterrows(), untreated)]
        parts.append(f"- **{t['scenario']}**: ACSA of the untreated classifier {pct(first['acsa_imbalanced'])}% "
                     f"(rarest class recall {first['recall_imbalanced']:.2f}); topped up by a converged GAN: "
                     + ", ".join(said))
    if not parts:
        return None
    # One bullet a scenario: run together with semicolons, four scenarios made one 120-word sentence.
    return ("**The short answer, from GANs trained to their measured budgets** (one GAN seed and one classifier seed "
            "each; whether a GAN also beats the cheapest fix is the verdicts' question, above, and each run's on the "
            "Evaluate page):\n\n" + "\n".join(p + "." for p in parts))


# bench/quality.py's option rows: what the table's "diffaugment" and "lecam" rows set (its OPTIONS).
OPTION_SETTINGS = {"diffaugment": ("diffaugment", "color,translation,cutout", "DiffAugment", "the paper's policy, "),
                   "lecam": ("lecam_weight", 0.3, "LeCam", "λ = ")}


def option_evidence(tables: list[dict], method: str, fields: dict, dataset: str | None = None) -> list[str]:
    """What the quality tables measured for ``method`` with the option that ``fields`` (a Train form's values)
    turn on, one clause per scenario: the option's row beside the method's plain row, both trained to the
    method's measured budget. The scenarios of the form's ``dataset`` come first. Nothing from a row below its
    budget (it says nothing about the option); when no converged pair exists, one sentence says so. Empty when
    no option is on."""
    on = {"diffaugment": fields.get("diffaugment") not in (None, "none"),
          "lecam": float(fields.get("lecam_weight") or 0) > 0}
    asked = [o for o in OPTION_SETTINGS if on[o]]
    out = []
    for option in asked:
        field, value, option_name, what = OPTION_SETTINGS[option]
        mine = "" if fields.get(field) == value else f"; you set {fields.get(field)}, which is not measured"
        name = f"{option_name} ({what}{value}{mine})"
        said = []
        mine_first = sorted(tables, key=lambda t: t.get("dataset") != dataset)
        for t in mine_first:
            q = t["table"]
            if not {"options", "acsa_gan", "acsa_imbalanced", "class_acc_min", "domain_fid"} <= set(q.columns):
                continue
            rows = q[(q["method"] == method) & q["trained"].str.startswith("converged")]
            plain, opt = rows[rows["options"] == "none"], rows[rows["options"] == option]
            if plain.empty or opt.empty:
                continue
            a, b = opt.iloc[-1], plain.iloc[-1]
            # Rows trained on two machines carry two untreated classifiers: name both.
            untreated = " and ".join(dict.fromkeys(f"{pct(r['acsa_imbalanced'])}%" for r in (a, b)))
            said.append(f"on {t['scenario']}, ACSA {pct(a['acsa_gan'])}% with it against {pct(b['acsa_gan'])}% "
                        f"without (untreated {untreated}), the worst row's class accuracy "
                        f"{a['class_acc_min']:.2f} against {b['class_acc_min']:.2f}, domain FID {a['domain_fid']:.2f} "
                        f"against {b['domain_fid']:.2f}")
        if said:
            out.append(f"Measured for {method} with {name}, both rows at its measured budget (bench/quality.py; "
                       "the Taxonomy page's tables): " + "; ".join(said) + ".")
        else:
            out.append(f"No table measures {method} with {name} at its measured budget yet: whether it helps here "
                       "is unmeasured.")
    return out


def trained_text(method: str, dataset: str, steps) -> str:
    """Whether a table's row was trained for at least its method's measured budget (imbagan.budgets)."""
    from imbagan import budgets

    b = budgets.measured(method, budgets.family(dataset))
    if steps is None or steps != steps:
        return "steps unknown"
    if not b:
        return f"{int(steps):,} steps; no budget measured"
    # A lower bound (the rule had not confirmed the family's budget) says it is one.
    need = f"at least {int(b['steps']):,}" if b.get("at_least") else f"{int(b['steps']):,}"
    if int(steps) >= int(b["steps"]):
        return f"converged{' as far as measured' if b.get('at_least') else ''} ({int(steps):,} ≥ {need})"
    return f"NOT converged ({int(steps):,} < {need})"


def convergence_tables(folder) -> list[dict]:
    """bench/converge.py's outputs, one entry per scenario: {"scenario", "summary", "curves", "caption"}."""

    import pandas as pd

    out = []
    for path in sorted(Path(folder).glob("converge-*-summary.csv")):
        scenario = path.name.removeprefix("converge-").removesuffix("-summary.csv")
        try:
            summary = pd.read_csv(path)
            curves = pd.read_csv(path.with_name(f"converge-{scenario}.csv"))
        except (OSError, ValueError):
            continue
        if summary.empty:
            continue
        first = summary.iloc[0]
        caption = (f"{scenario} · rule: {first.get('rule')} · {first.get('machine')}, {first.get('threads')} "
                   f"thread(s), load average {first.get('load_avg')}")
        others = [m for m in dict.fromkeys(summary.get("machine", pd.Series(dtype=str)).dropna().astype(str))
                  if m != str(first.get("machine"))]
        if others:  # a GPU's curves beside the CPU's: each row's machine is in its own column
            caption += f" · also {'; '.join(others)} (the device column says which rows)"
        if "precision" in summary.columns and summary["precision"].nunique() > 1:
            # A method's budget comes from the precision whose curves went furthest (bench/converge.py's
            # evidence: bf16 on a tie, as planned; float32 where a machine without native bf16 ran them longer);
            # the other precision's rows are bench/precision.py's check, usually at a fixed budget.
            summary = summary.sort_values("precision", key=lambda p: p != "bf16", kind="stable")
            caption += (" · each method's budget comes from the precision whose curves went furthest (bf16 where both "
                        "went as far); the shorter precision's rows are bench/precision.py's check that bf16 gives "
                        "the same images, often run to a fixed budget")
        cols = [c for c in ("method", "precision", "device", "seeds", "converged_step", "converged_steps", "max_step",
                            "minutes_to_converge", "best_fid", "class_acc_at_converged", "best_step_majority",
                            "best_step_minority") if c in summary.columns]
        out.append({"scenario": scenario, "summary": summary[cols], "curves": curves, "caption": caption})
    return out


def with_options(options) -> str:
    """A verdict table's ``options`` for its caption: " + DiffAugment", " (lecam_weight=0.1)" for a --set;
    "" for none or a table written before the column."""
    if not isinstance(options, str):
        return ""
    name, _, changed = options.partition(" ")
    label = "" if name in ("", "none") else " + " + (OPTION_SETTINGS[name][2] if name in OPTION_SETTINGS else name)
    return label + (f" ({changed})" if changed else "")


def _pm(mean, std) -> str:
    """A verdict table's cell: "90.0 ± 1.0" in %, "—" where the mean is missing."""
    return "—" if mean != mean else f"{pct(mean)} ± {pct(std)}"


def precision_note(precision) -> str:
    """", in GAN bf16, classifiers fp32" for a verdict table's caption; "" for a table written before bench/verdict.py
    recorded its precision."""
    return f", in {precision}" if isinstance(precision, str) and precision else ""


def verdict_tables(folder) -> list[dict]:
    """bench/verdict.py's tables, one entry per file: {"setting", "table", "trained", "verdict", "caption", "path"},
    and for ``verdict_summary`` the CSV as read ("frame"), the GAN's label ("gan") and the setting with its imbalance
    ("scenario").

    ``trained`` says whether the GAN trained for at least its method's measured budget (``gan_steps``; a table
    written before that column existed reads its steps from the budget text); "table" has one row per condition:
    ACSA and the minority class's recall, mean ± std over the (GAN seed, classifier seed) pairs."""
    import re

    import pandas as pd

    out = []
    for path in sorted(Path(folder).glob("verdict-*.csv")):
        try:
            v = pd.read_csv(path)
        except (OSError, ValueError):
            continue
        if v.empty or not {"condition", "acsa_mean", "method", "dataset"} <= set(v.columns):
            continue
        first = v.iloc[0]
        steps = first.get("gan_steps")
        if steps is None or steps != steps:
            found = re.search(r"(\d+) steps", str(first.get("budget", "")))
            steps = int(found.group(1)) if found else None
        table = pd.DataFrame({
            "training set": v["condition"],
            "ACSA (%)": [_pm(m, s) for m, s in zip(v["acsa_mean"], v["acsa_std"])],
            "minority recall (%)": [_pm(m, s) for m, s in zip(v["minority_recall_mean"], v["minority_recall_std"])],
            "pairs": v.get("seeds"),
        })
        said = [t for t in v.get("verdict", pd.Series(dtype=str)).dropna().astype(str)]
        # Tables written before the imbalance column were all bench/verdict.py's binary settings.
        imbalance = first.get("imbalance")
        imbalance = imbalance if isinstance(imbalance, str) else f"binary IR {first.get('ir', 100):g}"
        setting, gan = first.get("setting"), f"{first['method']}{with_options(first.get('options'))}"
        extra = [] if imbalance in str(setting) else [imbalance]  # a multi-class setting names its imbalance
        out.append({"setting": str(first.get("setting", path.stem)), "table": table, "path": path, "frame": v,
                    "gan": gan, "scenario": ", ".join([str(setting), *extra]),
                    "trained": trained_text(str(first["method"]), str(first["dataset"]), steps),
                    "verdict": said,
                    "caption": (" · ".join([str(setting), *extra, gan]) + " · "
                                f"budget {first.get('budget')} · measured {first.get('date')} on "
                                f"{first.get('machine')}{precision_note(first.get('precision'))} "
                                f"(load average {first.get('load_avg_start')})")})
    # Converged first: those are the verdicts that say something about the method.
    return sorted(out, key=lambda t: not t["trained"].startswith("converged"))


def verdict_summary(tables: list[dict]) -> tuple["pd.DataFrame", str]:
    """One row per (setting, GAN condition) of ``verdict_tables``' tables, and the sentence that answers issue 21's
    question: which GAN, if any, beats the best cheap fix beyond noise, per setting, and by how much.

    Columns: the setting, the GAN, its paired difference from the best cheap fix in points (± standard error, with
    imbagan.verdict's word), the fix and its ACSA, the topped-up set's ACSA, the untreated classifier's, the
    difference from it, and whether the GAN trained to its budget; ACSA as mean ± std over the (GAN seed, classifier
    seed) pairs. Only GANs trained to their budget count in the sentence; the others stay in the table, marked."""
    import re

    import pandas as pd

    from imbagan import verdict

    def acsa(v, name) -> str:
        got = v[v["condition"] == name]
        return "—" if got.empty else _pm(got["acsa_mean"].iloc[0], got["acsa_std"].iloc[0])

    def diff(r, ref) -> dict | None:
        d = r.get(f"vs_{ref}_acsa_diff")
        if d is None or d != d:
            return None
        se = r.get(f"vs_{ref}_acsa_se")
        return {"diff": float(d), "se": None if se is None or se != se else float(se),
                "word": r.get(f"vs_{ref}_acsa_word")}

    rows = []
    for t in tables:
        v = t["frame"]
        for _, r in v.iterrows():
            best, ok = r.get("best_baseline"), diff(r, "best")
            if not isinstance(best, str) or ok is None:
                continue  # not a GAN condition (the baselines carry no verdict)
            gan = t["gan"] if r["condition"] == "gan" else f"{t['gan']} ({r['condition']})"
            # The answer first (the page is narrow): the GAN against the best fix, then what it rests on.
            # "Fashion-MNIST sandal vs sneaker, binary IR 100": the classes' parentheses stay in the tables below.
            rows.append({"setting": re.sub(r" \([^)]*\)", "", t["scenario"]), "GAN": gan,
                         "vs the best fix (points)": verdict.cell(ok), "best cheap fix": f"{best} {acsa(v, best)}",
                         "topped up by the GAN (%)": acsa(v, r["condition"]),
                         "untreated ACSA (%)": acsa(v, "imbalanced"),
                         "vs untreated (points)": verdict.cell(diff(r, "imbalanced")), "trained": t["trained"],
                         "_diff": ok["diff"], "_word": ok["word"], "_best": best})
    df = pd.DataFrame(rows)
    if df.empty:
        return df, ""
    df = df.sort_values(["setting", "_diff"], ascending=[True, False], kind="stable")
    counted = df[df["trained"].str.startswith("converged")]
    if counted.empty:
        return df.drop(columns=["_diff", "_word", "_best"]), "No GAN of these verdicts trained to its measured budget."
    wins = counted[counted["_word"] == "better"]
    if not wins.empty:
        said = "; ".join(f"{w['GAN']} on {w['setting']}, by {w['vs the best fix (points)']} over {w['_best']}"
                         for _, w in wins.iterrows())
        sentence = f"**Beats the best cheap fix beyond noise:** {said}."
    else:
        per = [f"{s}: {g.iloc[0]['GAN']} {g.iloc[0]['vs the best fix (points)']} against {g.iloc[0]['_best']}"
               for s, g in counted.groupby("setting", sort=True)]
        sentence = (f"**No GAN trained to its budget beats the best cheap fix beyond noise** in any of the "
                    f"{len(per)} settings measured ({len(counted)} GAN verdicts). The closest per setting, in ACSA "
                    f"points: " + "; ".join(per) + ".")
    return df.drop(columns=["_diff", "_word", "_best"]), sentence


# What a verdict means (issue 16): shown above the method list; the Evaluate page gives each run's.
VERDICT_TEXT = (
    "**How to read a verdict.** A GAN earns its place when it beats the *cheapest fix*, not just the untreated "
    "classifier. Logit adjustment (Menon et al. 2021: subtract the log of the class prior from the logits at test "
    "time, or add it inside the training loss) costs next to nothing. So the Evaluate page compares each GAN, seed by seed, with the untreated classifier *and* with the best baseline. It says "
    "*better* or *worse* only when the mean difference is more than twice its standard error, and *within noise* "
    "otherwise. When a method here does not beat the cheap fixes, that is the answer, not a failure of the app.")
