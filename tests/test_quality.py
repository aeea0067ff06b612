"""FID as the evaluation computes it: class-matched sides, a held-out real side, and Inception-v3
built and fed the way Google's weights expect (checked with a randomly initialised network)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from imbagan import quality

CPU = torch.device("cpu")


# --- Fréchet distance with fewer images than features -------------------------------------------
def test_frechet_distance_with_fewer_images_than_features_matches_sqrtm():
    from scipy import linalg

    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 8)) @ rng.normal(size=(8, 8))
    b = rng.normal(size=(7, 8)) * 2 + 1
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    d = a.mean(0) - b.mean(0)
    # The textbook formula with SciPy's square root of the (singular) product.
    by_sqrtm = d @ d + np.trace(ca + cb) - 2 * np.trace(np.real(linalg.sqrtm(ca @ cb)))
    assert quality.frechet_distance(a, b) == pytest.approx(by_sqrtm, rel=1e-6)
    assert quality.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


# --- class-matched Fréchet distance ----------------------------------------------------------------
def clusters(counts: list[int], seed: int, dim: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Features whose class c is N(10 c, I): classes far apart, each a perfect sample of its own."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(counts)), counts)
    return rng.normal(size=(len(y), dim)) + 10.0 * y[:, None], y


def test_sides_hold_the_same_classes_in_the_same_proportions():
    real, ry = clusters([50, 50, 50], seed=0)
    fake, fy = clusters([30, 70, 80], seed=1)
    picks = quality.class_matched_indices(ry, fy, [0, 2], np.random.default_rng(0))
    assert list(picks) == [0, 2]  # class 1 is not modelled: on neither side
    for c, (ri, fi) in picks.items():
        assert len(ri) == len(fi) == min(50, (30, 70, 80)[c])
        assert (ry[ri] == c).all() and (fy[fi] == c).all()
        assert len(set(ri)) == len(ri) and len(set(fi)) == len(fi)  # without replacement
    capped = quality.class_matched_indices(ry, fy, [0, 1, 2], np.random.default_rng(0), per_class=10)
    assert [len(r) for r, _ in capped.values()] == [10, 10, 10]


def test_a_perfect_generator_in_other_proportions_scores_near_zero():
    # Each generated class is drawn from the real class's own distribution; only the mix differs.
    real, ry = clusters([100, 100, 100], seed=0)
    fake, fy = clusters([280, 10, 10], seed=1)
    pooled = quality.frechet_distance(real, fake)  # the old, unmatched way: the mix looks like a quality gap
    m = quality.class_matched_fid(real, ry, fake, fy, [0, 1, 2], np.random.default_rng(0))
    assert pooled > 50
    assert m["fid"] < 5 and m["images"] == 120
    assert [r["images"] for r in m["per_class"]] == [100, 10, 10]
    assert all(r["fid"] < 5 for r in m["per_class"])
    # A generator that is wrong for one class is caught in that class's row.
    shifted = fake + 5.0 * (fy == 1)[:, None]
    bad = quality.class_matched_fid(real, ry, shifted, fy, [0, 1, 2], np.random.default_rng(0))
    assert bad["per_class"][1]["fid"] > 50 > max(bad["per_class"][0]["fid"], bad["per_class"][2]["fid"])


def test_one_modelled_class_compares_that_class_only():
    # The minority-only `gan`: overall FID is over the modelled class, not against all ten.
    real, ry = clusters([40] * 10, seed=0)
    fake, fy = clusters([40], seed=1)
    m = quality.class_matched_fid(real, ry, fake, fy, [0], np.random.default_rng(0))
    assert m["images"] == 40 and [r["class"] for r in m["per_class"]] == [0]
    assert m["fid"] == m["per_class"][0]["fid"] < 5


# --- generated_quality: the domain FID's real side is held out -------------------------------------
def _set(x: np.ndarray, y: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(x=x, y=y, classes=("a", "b", "c"))


def images(counts: list[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 grey images whose class sets the brightness, with per-image noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(counts)), counts)
    x = np.clip(60 * y[:, None, None, None] + 40 + rng.normal(0, 12, (len(y), 1, 8, 8)), 0, 255).astype(np.uint8)
    return x, y


def embed(x: np.ndarray) -> np.ndarray:
    """Four features: the mean brightness of each image quadrant."""
    q = x[:, 0].reshape(len(x), 2, 4, 2, 4).mean((2, 4))
    return q.reshape(len(x), 4).astype(np.float64)


def test_domain_fid_compares_with_held_out_images(monkeypatch, tmp_path):
    monkeypatch.setenv(quality.INCEPTION_ENV, str(tmp_path / "missing.pth"))
    full = _set(*images([60, 60, 60], seed=0))
    seen = _set(full.x[::3], full.y[::3])
    heldout = _set(*images([30, 30, 30], seed=1))
    # A generator that reproduces held-out images: against the held-out side its FID is ~0.
    pool = {c: heldout.x[heldout.y == c] for c in (0, 2)}
    out = quality.generated_quality(pool, seen, full, lambda x: np.zeros(len(x), int), embed, images=30,
                                    pairs=5, seed=0, device=CPU, heldout=heldout)
    assert out["fid_real"] == "test split"
    rows = {r["class"]: r for r in out["per_class"]}
    for name in ("a", "c"):
        assert rows[name]["domain_fid"] == pytest.approx(0.0, abs=1e-6) and rows[name]["fid_images"] == 30
    assert math.isnan(rows["b"]["domain_fid"]) and rows["b"]["fid_images"] == 0  # not modelled
    assert out["overall"]["domain_fid"] == pytest.approx(0.0, abs=1e-6) and out["overall"]["fid_images"] == 60
    assert out["inception_fid"]["value"] is None and "Nothing is downloaded" in out["inception_fid"]["reason"]
    # The same pool against the reference classifier's training images (the old real side) is not ~0.
    vs_train = quality.class_matched_fid(embed(full.x), full.y, embed(pool[0]), np.zeros(30, int), [0],
                                         np.random.default_rng(0))
    assert vs_train["fid"] > 1.0


# --- Inception-v3 ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def inception():
    torch.manual_seed(0)
    return quality.inception_network()  # randomly initialised: no weights are downloaded


def test_inception_is_built_and_fed_as_googles_weights_expect(inception):
    from torchvision.models import Inception_V3_Weights

    assert inception.transform_input is True  # what inception_v3(weights=...) sets
    # The input torchvision's weights document, which transform_input then rescales to [-1, 1].
    spec = Inception_V3_Weights.IMAGENET1K_V1.transforms()
    assert list(spec.mean) == pytest.approx(quality.IMAGENET_MEAN) and list(spec.std) == pytest.approx(quality.IMAGENET_STD)
    seen = []
    hook = inception.Conv2d_1a_3x3.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].clone()))
    try:
        black_white = np.stack([np.zeros((1, 8, 8), np.uint8), np.full((1, 8, 8), 255, np.uint8)])
        feats = quality.inception_features(black_white, inception, CPU)
    finally:
        hook.remove()
    assert feats.shape == (2, 2048) and np.isfinite(feats).all()
    (x,) = seen
    assert x.shape == (2, 3, 299, 299)
    # Google's graph sees black as -1 and white as +1 on every channel.
    assert torch.allclose(x[0], torch.full_like(x[0], -1.0), atol=1e-5)
    assert torch.allclose(x[1], torch.full_like(x[1], 1.0), atol=1e-5)


@pytest.mark.slow  # about 40 images through Inception at 299 x 299 on one CPU thread
def test_inception_fid_runs_matched_and_separates_distributions(inception):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 3)
    real = rng.integers(0, 256, (9, 1, 8, 8)).astype(np.uint8)
    order = rng.permutation(9)
    same = quality.inception_fid(real, y, real[order], y[order], [0, 1, 2], CPU, net=inception)
    assert same["images"] == 9 and [r["images"] for r in same["per_class"]] == [3, 3, 3]
    assert same["weights"] == "given network"
    stripes = np.zeros((9, 1, 8, 8), np.uint8)
    stripes[:, :, ::2] = 255
    other = quality.inception_fid(real, y, stripes, y, [0, 1, 2], CPU, net=inception)
    assert np.isfinite(other["value"]) and other["value"] > 0
    # A random network's features are huge (~1e10), so "0" is 0 up to float64 rounding at that scale.
    assert same["value"] <= 1e-9 * other["value"]
    for s, o in zip(same["per_class"], other["per_class"]):
        assert o["fid"] > 0 and s["fid"] <= 1e-9 * o["fid"]


def test_inception_fid_is_absent_without_local_weights(monkeypatch, tmp_path):
    monkeypatch.setenv(quality.INCEPTION_ENV, str(tmp_path / "missing.pth"))
    x, y = np.zeros((2, 1, 16, 16), np.uint8), np.zeros(2, int)
    out = quality.inception_fid(x, y, x, y, [0], CPU)
    assert out["value"] is None and "Nothing is downloaded" in out["reason"]
