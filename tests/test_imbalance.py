"""Imbalance profiles: exact counts, deterministic selection and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from imbagan.imbalance import (
    PROFILES,
    STEP_TABLES,
    Imbalance,
    imbalance_ratio,
    remap,
    select,
    target_counts,
    test_indices,
)

TEN_5000 = [5000] * 10


def make_labels(counts: list[int], seed: int = 0) -> np.ndarray:
    """Shuffled labels with the given number of images per class."""
    labels = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(seed).permutation(labels)


# --- target counts, profile by profile ---------------------------------------------------


def test_none_keeps_everything() -> None:
    assert target_counts(Imbalance(), [7, 3, 5]) == [7, 3, 5]


@pytest.mark.parametrize("table", sorted(STEP_TABLES))
def test_step_at_ir_100_is_the_published_table(table: str) -> None:
    imb = Imbalance("step", ir=100, step_table=table)
    assert target_counts(imb, TEN_5000) == STEP_TABLES[table]


def test_step_auto_picks_the_table_by_channels() -> None:
    imb = Imbalance("step")
    assert target_counts(imb, TEN_5000, channels=1) == STEP_TABLES["mnist"]
    assert target_counts(imb, TEN_5000, channels=3) == STEP_TABLES["cifar10"]


def test_step_at_ir_10_keeps_the_head_and_the_ratio() -> None:
    counts = target_counts(Imbalance("step", ir=10, step_table="mnist"), TEN_5000)
    assert counts[0] == 4000
    assert counts[-1] == 400
    assert imbalance_ratio(counts) == pytest.approx(10, rel=0.01)
    assert counts == sorted(counts, reverse=True)


def test_step_at_ir_1_is_balanced() -> None:
    assert target_counts(Imbalance("step", ir=1, step_table="mnist"), TEN_5000) == [4000] * 10


def test_step_on_a_small_dataset_is_scaled_to_fit() -> None:
    available = [135, 140, 138, 136, 137, 139, 141, 135, 136, 137]
    counts = target_counts(Imbalance("step", ir=50, step_table="mnist"), available)
    assert counts[0] == 135
    assert all(c <= a for c, a in zip(counts, available))
    assert counts == sorted(counts, reverse=True)
    assert imbalance_ratio(counts) == pytest.approx(50, rel=0.15)


def test_step_too_small_even_when_scaled() -> None:
    with pytest.raises(ValueError, match=r"class 9 would keep only 1 image"):
        target_counts(Imbalance("step", ir=100, step_table="mnist"), [135] * 10)


def test_step_needs_ten_classes() -> None:
    with pytest.raises(ValueError, match=r"10 classes.*has 5.*longtail"):
        target_counts(Imbalance("step"), [5000] * 5)


@pytest.mark.parametrize("ir", [10, 50, 100])
def test_longtail_first_over_last_is_the_ir(ir: int) -> None:
    counts = target_counts(Imbalance("longtail", ir=ir), TEN_5000)
    assert counts[0] == 5000
    assert counts[0] / counts[-1] == ir
    assert counts == sorted(counts, reverse=True)


def test_longtail_head_is_the_smallest_available_class() -> None:
    counts = target_counts(Imbalance("longtail", ir=4), [100, 80, 90])
    assert counts == [80, 40, 20]


def test_drop_97_5_of_6000_keeps_150() -> None:
    counts = target_counts(Imbalance("drop", drop=97.5, minority=(0,)), [6000] * 10)
    assert counts == [150] + [6000] * 9


@pytest.mark.parametrize(
    ("drop", "kept"), [(40, 3600), (60, 2400), (80, 1200), (90, 600), (95, 300), (97.5, 150)]
)
def test_drop_bagan_levels(drop: float, kept: int) -> None:
    counts = target_counts(Imbalance("drop", drop=drop, minority=(3, 7)), [6000] * 10)
    assert counts[3] == counts[7] == kept
    assert [c for i, c in enumerate(counts) if i not in (3, 7)] == [6000] * 8


@pytest.mark.parametrize(("ir", "minority"), [(10, 600), (50, 120), (100, 60)])
def test_binary_counts(ir: int, minority: int) -> None:
    counts = target_counts(Imbalance("binary", ir=ir, majority=1, minority=(0,)), [6000] * 10)
    assert counts == [minority, 6000] + [0] * 8


def test_bagan_gp_counts() -> None:
    counts = target_counts(Imbalance("bagan_gp"), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    assert counts == [5923, 100, 200, 300, 400, 500, 600, 700, 800, 900]


def test_custom_counts() -> None:
    assert target_counts(Imbalance("custom", counts=(10, 5, 2)), [20, 20, 20]) == [10, 5, 2]


# --- selection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "imb",
    [
        Imbalance(),
        Imbalance("drop", drop=90, minority=(1, 2)),
        Imbalance("binary", ir=10, majority=3, minority=(1,)),
        Imbalance("step", ir=10),
        Imbalance("longtail", ir=20),
        Imbalance("bagan_gp"),
        Imbalance("custom", counts=tuple(range(100, 1100, 100))),
    ],
)
def test_select_matches_targets_and_stays_within_classes(imb: Imbalance) -> None:
    labels = make_labels(TEN_5000)
    idx, kept = select(imb, labels, seed=3)
    targets = target_counts(imb, TEN_5000)
    assert idx.dtype == np.int64
    assert np.all(np.diff(idx) > 0)  # sorted and unique
    assert kept == tuple(c for c, t in enumerate(targets) if t > 0)
    picked = np.bincount(labels[idx], minlength=10).tolist()
    assert picked == targets


def test_select_is_deterministic_per_seed() -> None:
    labels = make_labels(TEN_5000)
    imb = Imbalance("longtail", ir=10)
    a, _ = select(imb, labels, seed=1)
    b, _ = select(imb, labels, seed=1)
    c, _ = select(imb, labels, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_select_smaller_counts_are_subsets() -> None:
    labels = make_labels(TEN_5000)
    small, _ = select(Imbalance("step", ir=100), labels, seed=0)
    large, _ = select(Imbalance("step", ir=10), labels, seed=0)
    assert set(small.tolist()) <= set(large.tolist())


def test_bagan_gp_takes_the_first_images_of_each_class() -> None:
    labels = make_labels([300, 300, 300])
    idx, kept = select(Imbalance("bagan_gp"), labels, seed=0)
    assert kept == (0, 1, 2)
    for c, n in [(0, 300), (1, 100), (2, 200)]:
        np.testing.assert_array_equal(idx[labels[idx] == c], np.flatnonzero(labels == c)[:n])
    # The seed plays no part: bagan_gp is defined by dataset order.
    np.testing.assert_array_equal(idx, select(Imbalance("bagan_gp"), labels, seed=9)[0])


def test_binary_selection_keeps_two_classes() -> None:
    labels = make_labels([50, 500, 50, 50])
    idx, kept = select(Imbalance("binary", ir=10, majority=1, minority=(2,)), labels, seed=0)
    assert kept == (1, 2)  # ascending original ids: class 1 -> 0, class 2 -> 1
    assert np.bincount(labels[idx], minlength=4).tolist() == [0, 500, 50, 0]
    np.testing.assert_array_equal(np.bincount(remap(labels[idx], kept)), [500, 50])


def test_step_selection_uses_the_channel_table() -> None:
    labels = make_labels(TEN_5000)
    idx, _ = select(Imbalance("step"), labels, seed=0, channels=3)
    assert np.bincount(labels[idx]).tolist() == STEP_TABLES["cifar10"]


# --- remap, test split, ratio -----------------------------------------------------------


def test_remap_maps_kept_order() -> None:
    np.testing.assert_array_equal(remap(np.array([3, 7, 3, 7]), (3, 7)), [0, 1, 0, 1])
    np.testing.assert_array_equal(remap(np.array([0, 1, 2]), (2, 0, 1)), [1, 2, 0])


def test_remap_rejects_labels_not_kept() -> None:
    with pytest.raises(ValueError, match=r"\[5\]"):
        remap(np.array([3, 5]), (3, 7))


def test_test_indices_keep_everything_of_kept_classes() -> None:
    labels = np.array([0, 1, 2, 3, 1, 2, 0])
    np.testing.assert_array_equal(test_indices(labels, range(4)), np.arange(7))
    np.testing.assert_array_equal(test_indices(labels, (1, 2)), [1, 2, 4, 5])


def test_imbalance_ratio_ignores_empty_classes() -> None:
    assert imbalance_ratio([600, 6000, 0]) == 10
    with pytest.raises(ValueError, match="zero"):
        imbalance_ratio([0, 0])


def test_describe() -> None:
    assert Imbalance("step", ir=100).describe() == "step IR 100"
    assert Imbalance("drop", drop=97.5).describe() == "drop 97.5% of class 0"
    assert "10" in Imbalance("longtail", ir=10).describe()
    for profile in PROFILES:
        kwargs = {"counts": (2, 2)} if profile == "custom" else {}
        assert Imbalance(profile, **kwargs).describe()


def test_lists_are_accepted_and_stored_as_tuples() -> None:
    imb = Imbalance("drop", minority=[1, 2])  # type: ignore[arg-type]
    assert imb.minority == (1, 2)
    hash(imb)


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"profile": "zipf"}, r"'zipf'.*longtail"),
        ({"profile": "step", "ir": 0.5}, r"at least 1.*0\.5"),
        ({"profile": "drop", "drop": 100}, r"between 0 and 100.*100"),
        ({"profile": "drop", "drop": 0}, r"between 0 and 100.*drop=0"),
        ({"profile": "binary", "majority": 2, "minority": (2,)}, r"both class 2"),
        ({"profile": "binary", "minority": (0, 3)}, r"exactly one minority"),
        ({"profile": "custom"}, r"count for every class"),
        ({"profile": "custom", "counts": (10, 1)}, r"class 1 is 1"),
        ({"profile": "step", "step_table": "svhn"}, r"'svhn'"),
        ({"profile": "drop", "minority": (-1,)}, r"class -1"),
    ],
)
def test_invalid_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Imbalance(**kwargs)


@pytest.mark.parametrize(
    ("imb", "available", "match"),
    [
        (Imbalance("drop", minority=(12,)), TEN_5000, r"class 12 does not exist.*10 classes"),
        (Imbalance("binary", majority=10), TEN_5000, r"class 10 does not exist"),
        (Imbalance("drop", drop=99.9), [600, 600], r"class 0.*leaves 1 of its 600"),
        (Imbalance("binary", ir=1, majority=1, minority=(0,)), [500, 600], r"600 images of minority class 0.*only 500"),
        (Imbalance("binary", ir=100), [100, 120], r"minority class 0 with 1 image"),
        (Imbalance("bagan_gp"), [135] * 10, r"200 images of class 2.*only 135"),
        (Imbalance("custom", counts=(10, 5)), [20, 20, 20], r"2 counts.*3 classes"),
        (Imbalance("custom", counts=(30, 5)), [20, 20], r"30 images of class 0.*only 20"),
        (Imbalance(), [5, 0, 5], r"Class 1 has no training images"),
    ],
)
def test_impossible_targets(imb: Imbalance, available: list[int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        target_counts(imb, available)


def test_longtail_too_steep_raises() -> None:
    with pytest.raises(ValueError, match=r"class 9 with 1 image"):
        target_counts(Imbalance("longtail", ir=100), [100] * 10)


def test_select_rejects_bad_seed_and_labels() -> None:
    labels = make_labels([10, 10])
    with pytest.raises(ValueError, match="seed"):
        select(Imbalance(), labels, seed=-1)
    with pytest.raises(ValueError, match="empty"):
        select(Imbalance(), np.array([], dtype=np.int64), seed=0)
    with pytest.raises(ValueError, match="1-D integer"):
        select(Imbalance(), labels.astype(float), seed=0)
