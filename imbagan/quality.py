"""Numbers for the evaluation: classification metrics, SSIM, nearest neighbours, Fréchet distance, t-SNE.

Functions of arrays (no files, no run directories) so each can be checked by hand in tests.
The library does the arithmetic wherever one exists: scikit-learn and imbalanced-learn for the
classification metrics, scikit-image for SSIM, SciPy for the matrix square root, openTSNE for t-SNE.
FID is not torchmetrics' FrechetInceptionDistance: that metric takes images, one stateful object per
real/fake pair, while the evaluation computes the reference classifier's features once and splits
them per class; and its Inception path needs torch-fidelity's weights from the network.
"""

from __future__ import annotations

import glob
import math
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from imblearn.metrics import geometric_mean_score
from scipy import linalg
from skimage.metrics import structural_similarity
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score,
                             precision_recall_fscore_support)

INCEPTION_ENV = "IMBAGAN_INCEPTION"


# --- classification ---------------------------------------------------------------------------
def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str],
                           minority: int | None = None) -> dict:
    """Per-class precision / recall / F1 / support and the imbalance-aware summaries.

    ``acsa`` is the average class-specific accuracy, i.e. balanced accuracy (the mean of per-class
    recalls); ``gmean`` is the geometric mean of per-class recalls (imblearn's multiclass G-mean).
    ``minority`` (the class with the fewest training images) gets its row repeated under
    "minority", as in AGGAN Fig. 3.
    """
    labels = list(range(len(class_names)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    per_class = [{"class": class_names[c], "precision": float(p[c]), "recall": float(r[c]),
                  "f1": float(f[c]), "support": int(s[c])} for c in labels]
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "acsa": float(balanced_accuracy_score(y_true, y_pred)),
        "gmean": float(geometric_mean_score(y_true, y_pred, labels=labels, average="multiclass")),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": per_class,
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
    if minority is not None:
        out["minority"] = {"index": int(minority), **per_class[minority]}
    return out


# --- SSIM -------------------------------------------------------------------------------------
def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al. 2004, BAGAN §5.1) of two uint8 images shaped (C, H, W).

    scikit-image's default 7x7 window fits 16 px images; smaller images get the largest odd window
    that fits. Colour images are compared per channel and averaged (channel_axis).
    """
    c, h, w = a.shape
    win = min(7, h if h % 2 else h - 1, w if w % 2 else w - 1)
    if c == 1:
        return float(structural_similarity(a[0], b[0], data_range=255, win_size=win))
    return float(structural_similarity(np.moveaxis(a, 0, -1), np.moveaxis(b, 0, -1), data_range=255,
                                       win_size=win, channel_axis=-1))


def mean_pair_ssim(images: np.ndarray, pairs: int, rng: np.random.Generator) -> float:
    """Mean SSIM over ``pairs`` random couples of distinct images (BAGAN Fig. 8); NaN below two images."""
    n = len(images)
    if n < 2 or pairs < 1:
        return float("nan")
    i = rng.integers(0, n, pairs)
    j = (i + rng.integers(1, n, pairs)) % n  # any other image, uniformly
    return float(np.mean([ssim(images[a], images[b]) for a, b in zip(i, j)]))


def nearest_ssim(queries: np.ndarray, reference: np.ndarray, device: torch.device,
                 exclude_self: bool = False) -> float:
    """Mean SSIM of each query to its nearest reference image by L2 distance in pixel space.

    BAGAN §5.1's memorisation check. With ``exclude_self`` the queries are the first ``len(queries)``
    reference images and each one's own copy is skipped (real-to-nearest-other-real).
    NaN when there is no candidate neighbour.
    """
    if len(queries) == 0 or len(reference) - int(exclude_self) < 1:
        return float("nan")
    ref = torch.from_numpy(reference.reshape(len(reference), -1)).to(device, torch.float32)
    best = []
    for i in range(0, len(queries), 256):  # chunks keep the distance matrix small
        q = torch.from_numpy(queries[i:i + 256].reshape(min(256, len(queries) - i), -1)).to(device, torch.float32)
        dist = torch.cdist(q, ref)
        if exclude_self:
            rows = torch.arange(q.shape[0], device=device)
            dist[rows, rows + i] = float("inf")
        best.append(dist.argmin(1))
    nn_idx = torch.cat(best).cpu().numpy()
    return float(np.mean([ssim(q, reference[j]) for q, j in zip(queries, nn_idx)]))


# --- Fréchet distance -------------------------------------------------------------------------
def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, the FID formula).

    d² = ||μ_a − μ_b||² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½). On a classifier's own features this is a
    "domain FID": comparable between runs that share the classifier, not with Inception FID.
    NaN when either set has fewer than two rows.
    """
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    diff = mu_a - mu_b
    if a.shape[1] > max(len(a), len(b)):
        # Fewer images than features (per-class Inception FID: a few hundred images, 2048 features).
        # With Σ_a = AᵀA and Σ_b = BᵀB (A, B the centred rows over √(n−1)), the non-zero eigenvalues
        # of Σ_a Σ_b are the squared singular values of A Bᵀ, so Tr((Σ_a Σ_b)^½) = ||A Bᵀ||_*: exact,
        # and one small SVD instead of sqrtm of a singular 2048 x 2048 product (~30 s on one core).
        A = (a - mu_a) / math.sqrt(len(a) - 1)
        B = (b - mu_b) / math.sqrt(len(b) - 1)
        tr_root = np.linalg.svd(A @ B.T, compute_uv=False).sum()
        return float(max(0.0, diff @ diff + (A * A).sum() + (B * B).sum() - 2 * tr_root))
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():
        # With fewer samples than dimensions the covariances are singular; expected, not news.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():
            # pytorch-fid's remedy for a product sqrtm cannot handle: nudge the diagonals.
            off = np.eye(len(cov_a)) * 1e-6
            root = linalg.sqrtm((cov_a + off) @ (cov_b + off))
    root = np.real(root)  # tiny imaginary parts are numerical noise
    return float(max(0.0, diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root)))


# --- class-matched Fréchet distance -------------------------------------------------------------
def class_matched_indices(real_y: np.ndarray, fake_y: np.ndarray, classes, rng: np.random.Generator,
                          per_class: int | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{class: (real indices, fake indices)}, the same number n_c of each, drawn without replacement.

    n_c = min(real images of c, generated images of c, ``per_class``). Only ``classes`` (the modelled
    ones) are drawn, so both sides hold the same classes in the same proportions.
    """
    picks = {}
    for c in classes:
        r, f = np.flatnonzero(real_y == c), np.flatnonzero(fake_y == c)
        n = min(len(r), len(f), per_class if per_class is not None else len(r))
        picks[int(c)] = (np.sort(rng.choice(r, n, replace=False)), np.sort(rng.choice(f, n, replace=False)))
    return picks


def class_matched_fid(real: np.ndarray, real_y: np.ndarray, fake: np.ndarray, fake_y: np.ndarray, classes,
                      rng: np.random.Generator, per_class: int | None = None) -> dict:
    """Fréchet distance per class and over all ``classes``, on feature sets matched class for class.

    ``real``/``fake`` are features (one row per image) labelled by ``real_y``/``fake_y``. Each class
    contributes the same number of rows to both sides (``class_matched_indices``), and the overall
    distance pools exactly those rows, so a class-frequency mismatch can never pass for a quality gap.
    Classes outside ``classes`` (e.g. the majority under the minority-only ``gan``) are left out.
    FID is biased upwards at small sample sizes (Chong & Forsyth 2020), so each value comes with
    its image count per side; compare FIDs only at equal counts.

    Returns {"fid": float, "images": int (per side), "per_class": [{"class", "fid", "images"}, ...]}.
    """
    picks = class_matched_indices(real_y, fake_y, classes, rng, per_class)
    rows = [{"class": c, "fid": frechet_distance(real[ri], fake[fi]), "images": int(len(ri))}
            for c, (ri, fi) in picks.items()]
    ri = np.concatenate([p[0] for p in picks.values()]) if picks else np.zeros(0, int)
    fi = np.concatenate([p[1] for p in picks.values()]) if picks else np.zeros(0, int)
    return {"fid": frechet_distance(real[ri], fake[fi]), "images": int(len(ri)), "per_class": rows}


# --- generated images, BAGAN §5.1 ------------------------------------------------------------------
def generated_quality(pool: dict[int, np.ndarray], seen, full, predict: Callable[[np.ndarray], np.ndarray],
                      embed: Callable[[np.ndarray], np.ndarray], images: int, pairs: int, seed: int,
                      device: torch.device, *, heldout, heldout_name: str = "test split",
                      inception_images: int | None = None) -> dict:
    """Per class: the three goals of BAGAN §5.1 for generated images, next to real reference values.

    ``pool`` maps each modelled class to generated uint8 images; ``seen`` is the imbalanced training
    set (what the generator learnt from), ``full`` the whole real training set (what the reference
    classifier learnt from), ``heldout`` real images neither saw (the run's test split, named by
    ``heldout_name``); ``predict`` and ``embed`` are the reference classifier's labels and
    penultimate features.

    - class_accuracy: the reference classifier's accuracy on ``images`` generated images (Fig. 7);
    - ssim_gen / ssim_real: mean SSIM of ``pairs`` random couples, generated vs real (Fig. 8);
    - nn_ssim_gen / nn_ssim_real: SSIM to the L2-nearest image of the class in ``seen``, for
      generated images vs real ones (their nearest *other* image): close values mean no memorising;
    - domain_fid (fid_images a side): Fréchet distance of reference features, generated vs held-out
      real images of the class. Held out because the classifier's own training images sit closer to
      its features than any unseen image: against them even a perfect generator scores above zero.
    The overall domain FID and the Inception FID are class-matched over the modelled classes only.
    ``inception_images`` caps Inception FID's images a side (default INCEPTION_IMAGES).

    Returns {"per_class": rows, "overall": {...}, "inception_fid": inception_fid(...)'s dict,
    "fid_real": ``heldout_name``}.
    """
    rng = np.random.default_rng(seed)
    fid_rng = np.random.default_rng([seed, 1])  # FID's draws do not shift the SSIM pairs
    gen_x = np.concatenate([pool[c][:images] for c in pool]) if pool else np.zeros((0, *full.x.shape[1:]), np.uint8)
    gen_y = np.concatenate([np.full(len(pool[c][:images]), c) for c in pool]) if pool else np.zeros(0, int)
    modeled = sorted(int(c) for c in pool)
    domain = class_matched_fid(embed(heldout.x), heldout.y, embed(gen_x) if len(gen_x) else np.zeros((0, 1)),
                               gen_y, modeled, fid_rng)
    fid_of = {r["class"]: r for r in domain["per_class"]}
    rows, correct = [], []
    for c, name in enumerate(full.classes):
        seen_c = seen.x[seen.y == c]
        row = {"class": name, "generated": 0, "class_accuracy": math.nan, "ssim_gen": math.nan,
               "ssim_real": mean_pair_ssim(full.x[full.y == c], pairs, rng), "nn_ssim_gen": math.nan,
               "nn_ssim_real": nearest_ssim(seen_c[:pairs], seen_c, device, exclude_self=True),
               "domain_fid": math.nan, "fid_images": 0}
        if c in pool:
            gen = pool[c][:images]
            hit = predict(gen) == c
            row.update(generated=len(gen), class_accuracy=float(hit.mean()),
                       ssim_gen=mean_pair_ssim(gen, pairs, rng), nn_ssim_gen=nearest_ssim(gen[:pairs], seen_c, device),
                       domain_fid=fid_of[c]["fid"], fid_images=fid_of[c]["images"])
            correct.append(hit)
        rows.append(row)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of a class with no real couple
        overall = {"class_accuracy": float(np.concatenate(correct).mean()) if correct else math.nan,
                   **{k: float(np.nanmean([r[k] for r in rows if r["generated"]]))
                      for k in ("ssim_gen", "ssim_real", "nn_ssim_gen", "nn_ssim_real")},
                   "domain_fid": domain["fid"], "fid_images": domain["images"]}
    inception = inception_fid(heldout.x, heldout.y, gen_x, gen_y, modeled, device, seed=seed,
                              max_images=inception_images)
    return {"per_class": rows, "overall": overall, "inception_fid": inception, "fid_real": heldout_name}


# --- Inception FID (only with local weights) -----------------------------------------------------
INCEPTION_IMAGES = 5000  # at most this many images a side; FIDs compare only at equal counts
# What torchvision's Inception weights take (Inception_V3_Weights.IMAGENET1K_V1.transforms()).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def find_inception_weights() -> Path | None:
    """A torchvision inception_v3 state dict: $IMBAGAN_INCEPTION, else torch hub's cache. Never downloads."""
    env = os.environ.get(INCEPTION_ENV)
    if env:
        return Path(env) if Path(env).is_file() else None
    hits = sorted(glob.glob(os.path.join(torch.hub.get_dir(), "checkpoints", "inception_v3_google-*.pth")))
    return Path(hits[0]) if hits else None


def inception_network(weights: str | os.PathLike | None = None) -> torch.nn.Module:
    """torchvision's Inception-v3 built the way its Google weights expect, returning 2048-d pool features.

    ``transform_input=True`` is what ``inception_v3(weights=...)`` sets: Google's graph was trained on
    inputs scaled to [-1, 1], and the flag turns torchvision's ImageNet-normalised input into exactly
    that. Without ``weights`` the network is randomly initialised (for tests; its FIDs mean nothing).
    """
    from torchvision.models import inception_v3

    net = inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=weights is None)
    if weights is not None:
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    net.fc = torch.nn.Identity()
    return net.eval()


@torch.inference_mode()
def inception_features(x: np.ndarray, net: torch.nn.Module, device: torch.device, batch: int = 100) -> np.ndarray:
    """(N, 2048) pool features of uint8 images (N, C, H, W), grey or RGB.

    The input torchvision's Inception weights expect (their ``transforms()``): RGB in [0, 1] at
    299 x 299, normalised by ImageNet's mean and std; ``transform_input`` then rescales it to [-1, 1].
    """
    import torch.nn.functional as F

    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    out = []
    for i in range(0, len(x), batch):
        t = torch.from_numpy(x[i:i + batch]).to(device).float().div(255)
        t = t.expand(-1, 3, -1, -1)  # grey -> RGB
        t = F.interpolate(t, size=(299, 299), mode="bilinear", align_corners=False)
        out.append(net((t - mean) / std).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 2048), np.float32)


def inception_fid(real: np.ndarray, real_y: np.ndarray, fake: np.ndarray, fake_y: np.ndarray, classes,
                  device: torch.device, seed: int = 0, max_images: int | None = None,
                  net: torch.nn.Module | None = None) -> dict:
    """Class-matched FID on Inception-v3 pool features, if its weights are on disk; else why not.

    Up to ``max_images`` (default INCEPTION_IMAGES) a side, split evenly over ``classes``, matched
    class for class (``class_matched_fid``). torchvision's port is not the TF graph that published
    FIDs use, so values compare between runs of this project only. ``net`` skips the weights
    lookup (tests pass ``inception_network()``, randomly initialised).

    Returns {"value", "images", "per_class", "weights"}, or {"value": None, "reason"}.
    """
    where = "given network"
    if net is None:
        path = find_inception_weights()
        if path is None:
            where = os.environ.get(INCEPTION_ENV) or os.path.join(torch.hub.get_dir(), "checkpoints")
            return {"value": None, "reason": f"no Inception-v3 weights found locally ({where}); set "
                    f"${INCEPTION_ENV} to a torchvision inception_v3 state dict. Nothing is downloaded."}
        net, where = inception_network(path), str(path)
    classes = [int(c) for c in classes]
    if not classes:
        return {"value": None, "reason": "no modelled class to compare"}
    cap = max(1, (max_images or INCEPTION_IMAGES) // len(classes))
    picks = class_matched_indices(real_y, fake_y, classes, np.random.default_rng([seed, 2]), cap)
    ri = np.concatenate([p[0] for p in picks.values()])
    fi = np.concatenate([p[1] for p in picks.values()])
    net = net.to(device).eval()
    rf, ff = inception_features(real[ri], net, device), inception_features(fake[fi], net, device)
    # The draws above are already matched: this only splits them by class.
    m = class_matched_fid(rf, real_y[ri], ff, fake_y[fi], classes, np.random.default_rng(0))
    return {"value": m["fid"], "images": m["images"], "per_class": m["per_class"], "weights": where}


# --- t-SNE --------------------------------------------------------------------------------------
def tsne(x: np.ndarray, seed: int, n_jobs: int | None = None) -> np.ndarray:
    """2-D openTSNE embedding (Barnes-Hut below 10,000 points, FFT above: openTSNE's own choice).

    ``n_jobs`` defaults to torch's thread count, so one setting governs both: openTSNE's threads
    spin-wait, and on a busy machine 2 threads were 30x slower than 1 (48 s vs 1.6 s for 300 points).
    """
    from openTSNE import TSNE

    n = len(x)
    if n < 4:
        return np.zeros((n, 2), dtype=np.float32)
    perplexity = min(30.0, (n - 1) / 3.0)  # openTSNE needs at least 3 * perplexity neighbours
    n_jobs = n_jobs or max(1, torch.get_num_threads())
    emb = TSNE(n_components=2, perplexity=perplexity, random_state=seed, n_jobs=n_jobs).fit(
        np.ascontiguousarray(x, dtype=np.float32))
    return np.asarray(emb, dtype=np.float32)
