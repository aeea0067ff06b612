"""Readable names for the raw keys the library logs and writes, one place for every chart and table.

``LABELS[key] = (label, one-line tooltip)``. Keys come from methods' ``train_step`` logs
(metrics.jsonl), the evaluation's metrics.json and quality.csv. An unknown key falls back to itself
with underscores as spaces, so a new method's log still shows.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

LABELS: dict[str, tuple[str, str]] = {
    # --- training logs (metrics.jsonl) ---
    "d_loss": ("D loss", "The discriminator's (critic's) loss on this step's real and generated images."),
    "g_loss": ("G loss", "The generator's loss: how well its images fool the discriminator. Scales differ by method."),
    "ae_loss": ("autoencoder loss", "Reconstruction error of the autoencoder that initialises BAGAN's generator."),
    "adv_loss": ("adversarial loss", "The real/fake part of the loss."),
    "gp": ("gradient penalty", "WGAN-GP's penalty on the critic's gradient norm away from 1 (before its weight)."),
    "w_dist": ("Wasserstein estimate", "Critic score of real minus generated images: the critic's distance estimate."),
    "d_real": ("D on real", "The discriminator's mean real/fake output on real images (a probability for bce)."),
    "d_fake": ("D on generated", "The discriminator's mean real/fake output on generated images."),
    "d_fake_acc": ("D spots fakes", "Fraction of generated images the discriminator labels fake."),
    "d_cls_real": ("D class loss, real", "The discriminator's classification loss on real images."),
    "d_cls_fake": ("D class loss, generated", "The discriminator's classification loss on generated images."),
    "aux_acc": ("D class accuracy, real", "How often the discriminator's class head names a real image's class."),
    "g_class_acc": ("G class accuracy", "How often the discriminator gives the generator's images the class asked for."),
    "mixed": ("mixed D batch", "1 when this step's discriminator batch mixed real and generated images (CAGAN)."),
    "fit_parent": ("parent fitness", "AGGAN: fitness of the current generator before mutation."),
    "fit_minimax": ("fitness, minimax child", "AGGAN: fitness of the offspring trained with the minimax loss."),
    "fit_nonsat": ("fitness, non-saturating child", "AGGAN: fitness of the offspring trained with the non-saturating loss."),
    "fit_ls": ("fitness, least-squares child", "AGGAN: fitness of the offspring trained with the least-squares loss."),
    "chosen_loss": ("chosen loss", "AGGAN: which offspring won (0 minimax, 1 non-saturating, 2 least squares)."),
    "chose_minimax": ("chose minimax", "AGGAN: 1 when the minimax offspring won this step."),
    "chose_nonsat": ("chose non-saturating", "AGGAN: 1 when the non-saturating offspring won this step."),
    "chose_ls": ("chose least squares", "AGGAN: 1 when the least-squares offspring won this step."),
    "temperature": ("temperature", "AGGAN: the annealed Metropolis temperature."),
    "accepted": ("accepted", "AGGAN: 1 when the winning offspring replaced the best generator."),
    "accepted_worse": ("accepted a worse one", "AGGAN: 1 when a worse offspring was accepted (Metropolis)."),
    "best_fitness": ("best fitness", "AGGAN: fitness of the best generator so far."),
    "d_wrong": ("D on real images, wrong label", "BAGAN-GP: D's mean output on real images paired with a random "
                "label, which it learns to call fake."),
    # --- evaluation (metrics.json, report.csv) ---
    "accuracy": ("accuracy", "Share of test images classified right (dominated by the large classes)."),
    "acsa": ("ACSA", "Average class-specific accuracy: the mean of per-class recalls (balanced accuracy)."),
    "gmean": ("G-mean", "Geometric mean of the per-class recalls; near 0 when any class is missed."),
    "macro_f1": ("macro F1", "F1 averaged over classes with equal weight."),
    "minority_recall": ("minority recall", "Recall of the minority classes (fewer than half the largest class)."),
    "ir": ("IR", "Imbalance ratio: largest / smallest class of the trained set."),
    # --- generated-image quality (quality.csv, BAGAN §5.1) ---
    "class": ("class", "The class."),
    "generated": ("generated images", "Generated images of the class that were judged."),
    "class_accuracy": ("class accuracy", "Share of generated images the reference classifier puts in the class asked for."),
    "ssim_gen": ("SSIM diversity, generated", "Mean SSIM between pairs of generated images of a class; lower = more varied."),
    "ssim_real": ("SSIM diversity, real", "The same for real images: the diversity to aim for."),
    "nn_ssim_gen": ("nearest-real SSIM, generated", "SSIM of a generated image to its nearest real training image; high = copied."),
    "nn_ssim_real": ("nearest-real SSIM, real", "The same for real images (to their nearest other image): the usual closeness."),
    "domain_fid": ("domain FID", "Fréchet distance of reference-classifier features, generated vs real; lower is closer."),
    "fid": ("domain FID", "Fréchet distance of reference-classifier features, generated vs real; lower is closer."),
    # --- bench/quality.py's table ---
    "class_acc_min": ("class accuracy, worst class", "The lowest class accuracy of generated images over the classes modelled."),
    "clf_steps": ("classifier steps", "Optimiser steps of each classifier behind the recall and ACSA columns: "
                  "compare those columns only between rows with equal steps."),
    "recall_imbalanced": ("minority recall, imbalanced", "The rarest class's recall when the classifier trains on the imbalanced set."),
    "recall_gan": ("minority recall, with the GAN", "The same after topping the set up with the method's images."),
    "recall_full": ("minority recall, full set", "The same on the dataset without imbalance: the ceiling."),
    "acsa_imbalanced": ("ACSA, imbalanced", "Mean per-class recall of the classifier trained on the imbalanced set."),
    "acsa_gan": ("ACSA, with the GAN", "The same after topping the set up with the method's images."),
    "acsa_full": ("ACSA, full set", "The same on the dataset without imbalance: the ceiling."),
    "options": ("options", "none, or the GAN option the row was trained with (DiffAugment, LeCam)."),
}


# The Train form's fields (TrainConfig), as a person reads them; FIELD_HELP says the rest.
FIELD_LABELS: dict[str, str] = {
    "steps": "adversarial steps", "batch_size": "batch size", "latent_dim": "latent size (z)",
    "lr": "learning rate", "beta1": "Adam β1", "beta2": "Adam β2", "width": "network width", "seed": "seed",
    "ae_steps": "autoencoder steps", "gan_classes": "classes to model", "adv_loss": "adversarial loss",
    "acgan_variant": "ACGAN variant", "lambda_cls": "class-loss weight λ", "gp_weight": "gradient-penalty weight",
    "n_critic": "D steps per G step", "aggan_t0": "start temperature T₀", "aggan_alpha": "temperature decay α",
    "aggan_gamma": "diversity weight γ", "aggan_sample_from": "draw samples from",
    "cagan_mix_start": "mixed batches from (share of training)", "cagan_d_norm": "normalisation in D",
    "cagan_reg": "D regulariser", "cagan_reg_weight": "regulariser weight", "bagan_gp_variant": "BAGAN-GP form",
    "diffaugment": "DiffAugment", "lecam_weight": "LeCam weight λ", "sample_every": "steps between sample grids",
    "tick_every": "steps between metric reads", "checkpoint_every": "steps between checkpoints",
    "samples_per_class": "images per grid row", "device": "device", "precision": "precision",
    "quality_curve": "convergence curve", "stop_when": "stop when",
}


def field_label(name: str) -> str:
    """A config field's name on the form: "D steps per G step" for n_critic."""
    return FIELD_LABELS.get(name, name.replace("_", " "))


def label(key: str) -> str:
    """The readable name of a logged or reported key."""
    return LABELS[key][0] if key in LABELS else str(key).replace("_", " ")


def tooltip(key: str) -> str | None:
    """The one-line explanation of a key, or None for a key nobody described."""
    return LABELS[key][1] if key in LABELS else None


# Decimals for tables: counts as integers, FID with two, everything else (rates, SSIM, losses) with three.
def number_format(key: str) -> str:
    if key in ("generated", "steps"):
        return "%d"
    if key in ("domain_fid", "fid", "inception_fid"):
        return "%.2f"
    if key == "ir":
        return "%.1f"
    return "%.3f"


def pct(x: float) -> str:
    """A fraction as a percentage with one decimal, half up as README's tables are rounded: 0.8795 reads 88.0,
    where an f-string says 87.9 (100 * 0.8795 is 87.94999... in binary). A dash where there is no number (NaN, an
    infinity: a cell a table could not fill), as ``eta_text`` says it."""
    if x is None or not math.isfinite(float(x)):
        return "—"
    return str(Decimal(repr(round(100 * float(x), 9))).quantize(Decimal("0.1"), ROUND_HALF_UP))


def eta_text(seconds: float | None) -> str:
    """Seconds as m:ss (or h:mm:ss); a dash where nothing is known."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
