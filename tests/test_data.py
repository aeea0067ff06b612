"""Dataset loading: bundled digits, IDX files, image folders, the cache and clear errors.

Every test writes its own tiny data under tmp_path; nothing is downloaded.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imbagan import data, folders
from imbagan.data import DATASETS, ImageSet, data_root, load

COLOURS = {"cat": (200, 100, 50), "dog": (10, 220, 30), "eel": (90, 90, 250)}


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep caches and HOME inside tmp_path, and ignore the user's data root."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(folders.CACHE_ENV, str(cache))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(data.DEFAULT_ROOT_ENV, raising=False)
    return cache


def grey(rgb: tuple[int, int, int]) -> int:
    r, g, b = rgb
    return (r * 299 + g * 587 + b * 114 + 500) // 1000


def write_folder(
    folder: Path, per_class: int, size: tuple[int, int] = (40, 30), ext: str = "png",
    classes: dict[str, tuple[int, int, int]] = COLOURS,
) -> None:
    """One solid-colour image per file, so decoded pixels are known exactly."""
    for name, colour in classes.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new("RGB", size, colour).save(folder / name / f"{i:04d}.{ext}")


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX file as torchvision reads it: magic 0x08 (uint8) << 8 | ndim, then big-endian dims."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str = "MNIST") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = {}
    for prefix, n in (("train", 30), ("t10k", 10)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = np.arange(n, dtype=np.uint8) % 10
        write_idx(root / folder / "raw" / f"{prefix}-images-idx3-ubyte", x)
        write_idx(root / folder / "raw" / f"{prefix}-labels-idx1-ubyte", y)
        out[prefix] = (x, y)
    return out


# --- registry, root, ImageSet -----------------------------------------------------------


def test_registry_lists_every_dataset() -> None:
    assert set(DATASETS) == {"digits", "mnist", "fashion_mnist", "cifar10", "imagefolder"}
    assert not DATASETS["digits"].needs_root
    assert all(DATASETS[n].needs_root for n in ("mnist", "fashion_mnist", "cifar10", "imagefolder"))
    for info in DATASETS.values():
        assert info.title and info.description and callable(info.loader)


def test_data_root_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert data_root() == tmp_path / "data"
    monkeypatch.setenv(data.DEFAULT_ROOT_ENV, str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "given") == tmp_path / "given"


def test_imageset_shape_counts_and_validation() -> None:
    s = ImageSet(np.zeros((5, 3, 8, 8), np.uint8), np.array([0, 2, 2, 1, 2]), ["a", "b", "c"])
    assert s.shape == (3, 8, 8)
    assert s.counts() == [1, 1, 3]
    assert s.classes == ("a", "b", "c") and s.y.dtype == np.int64 and len(s) == 5
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(np.zeros((5, 3, 8, 8), np.float32), np.zeros(5, np.int64), ("a",))
    with pytest.raises(ValueError, match="0..1"):
        ImageSet(np.zeros((2, 1, 8, 8), np.uint8), np.array([0, 2]), ("a", "b"))


# --- digits -----------------------------------------------------------------------------


def test_digits_train_and_test() -> None:
    train, test = load("digits", "train"), load("digits", "test")
    assert train.x.shape == (1347, 1, 16, 16) and test.x.shape == (450, 1, 16, 16)
    assert train.x.dtype == np.uint8 and train.y.dtype == np.int64
    assert train.x.max() == 255 and train.x.min() == 0
    assert train.classes == tuple(str(i) for i in range(10))
    # Stratified: every class puts about a quarter of its images in the test split.
    for n_train, n_test in zip(train.counts(), test.counts()):
        assert abs(n_test / (n_train + n_test) - 0.25) < 0.02
    again = load("digits", "train")
    np.testing.assert_array_equal(train.x, again.x)
    np.testing.assert_array_equal(train.y, again.y)


def test_digits_resize_and_channels() -> None:
    s = load("digits", "test", image_size=32, channels=3)
    assert s.x.shape == (450, 3, 32, 32)
    np.testing.assert_array_equal(s.x[:, 0], s.x[:, 2])


# --- MNIST-style IDX files --------------------------------------------------------------


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_style_from_idx_files(tmp_path: Path, name: str, folder: str) -> None:
    written = write_mnist(tmp_path, folder)
    train = load(name, "train", root=tmp_path)
    test = load(name, "test", root=tmp_path)
    assert train.x.shape == (30, 1, 28, 28) and test.x.shape == (10, 1, 28, 28)
    np.testing.assert_array_equal(train.x[:, 0], written["train"][0])
    np.testing.assert_array_equal(test.y, written["t10k"][1])
    assert len(train.classes) == 10 and train.counts() == [3] * 10


def test_mnist_env_root_and_resize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_mnist(tmp_path)
    monkeypatch.setenv(data.DEFAULT_ROOT_ENV, str(tmp_path))
    s = load("mnist", "train", image_size=32, channels=3)
    assert s.x.shape == (30, 3, 32, 32) and s.x.dtype == np.uint8


def test_mnist_missing_names_folder_and_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        load("mnist", root=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "IMBAGAN_DATA" in message and "download=True" in message


def test_mnist_gz_only_suggests_gunzip(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="gunzip"):
        load("mnist", root=tmp_path)


# --- image folders ----------------------------------------------------------------------


def test_imagefolder_with_train_and_test(tmp_path: Path) -> None:
    write_folder(tmp_path / "train", per_class=4)
    write_folder(tmp_path / "test", per_class=2)
    train = load("imagefolder", "train", root=tmp_path)
    assert train.x.shape == (12, 3, 32, 32) and train.x.dtype == np.uint8
    assert train.classes == ("cat", "dog", "eel") and train.counts() == [4, 4, 4]
    for label, colour in enumerate(COLOURS.values()):
        np.testing.assert_array_equal(train.x[train.y == label][0, :, 5, 5], colour)
    test = load("imagefolder", "test", root=tmp_path, image_size=16, channels=1)
    assert test.x.shape == (6, 1, 16, 16) and test.counts() == [2, 2, 2]
    for label, colour in enumerate(COLOURS.values()):
        assert abs(int(test.x[test.y == label][0, 0, 8, 8]) - grey(colour)) <= 1


def test_imagefolder_test_labels_follow_train_classes(tmp_path: Path) -> None:
    write_folder(tmp_path / "train", per_class=2)
    write_folder(tmp_path / "test", per_class=2, classes={"cat": COLOURS["cat"], "eel": COLOURS["eel"]})
    test = load("imagefolder", "test", root=tmp_path)
    assert test.classes == ("cat", "dog", "eel")
    assert test.counts() == [2, 0, 2]


def test_imagefolder_flat_holds_out_a_stratified_fifth(tmp_path: Path) -> None:
    folder = tmp_path / "flat"
    for label, name in enumerate(("a", "b")):
        (folder / name).mkdir(parents=True)
        for i in range(10):  # a distinct grey level per image identifies it after loading
            Image.new("L", (8, 8), 10 * i + 100 * label).save(folder / name / f"{i}.png")
    train = load("imagefolder", "train", root=folder, channels=1, image_size=8)
    test = load("imagefolder", "test", root=folder, channels=1, image_size=8)
    assert train.counts() == [8, 8] and test.counts() == [2, 2]
    train_ids = set(train.x[:, 0, 0, 0].tolist())
    test_ids = set(test.x[:, 0, 0, 0].tolist())
    assert not train_ids & test_ids and len(train_ids | test_ids) == 20
    again = load("imagefolder", "test", root=folder, channels=1, image_size=8)
    np.testing.assert_array_equal(test.x, again.x)


def test_imagefolder_large_images_are_cropped_not_stretched(tmp_path: Path) -> None:
    # 160x120 photos take the threaded decode path; the centre crop drops the red side bands.
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(6):
            im = Image.new("RGB", (160, 120), (255, 0, 0))
            im.paste((0, 0, 255), (20, 0, 140, 120))
            im.save(tmp_path / name / f"{i}.jpg", quality=95)
    s = load("imagefolder", "train", root=tmp_path, image_size=24)
    assert s.x.shape[1:] == (3, 24, 24)
    assert s.x[:, 0].max() < 40 and s.x[:, 2].min() > 200


def test_imagefolder_second_load_hits_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _isolated_env: Path
) -> None:
    write_folder(tmp_path / "imgs" / "train", per_class=3)
    write_folder(tmp_path / "imgs" / "test", per_class=1)
    first = load("imagefolder", "train", root=tmp_path / "imgs")
    assert len(list(_isolated_env.glob("*.npz"))) == 1

    def no_decoding(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("decoded again although a cache exists")

    monkeypatch.setattr(folders, "_decode_images", no_decoding)
    second = load("imagefolder", "train", root=tmp_path / "imgs")
    np.testing.assert_array_equal(first.x, second.x)
    np.testing.assert_array_equal(first.y, second.y)
    assert second.classes == first.classes

    # Another size is another cache entry, and changed files invalidate the old one.
    with pytest.raises(AssertionError, match="decoded again"):
        load("imagefolder", "train", root=tmp_path / "imgs", image_size=16)
    Image.new("RGB", (40, 30), (1, 2, 3)).save(tmp_path / "imgs" / "train" / "cat" / "new.png")
    with pytest.raises(AssertionError, match="decoded again"):
        load("imagefolder", "train", root=tmp_path / "imgs")


def test_cache_never_goes_into_the_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The app lets anyone pick a data folder: a preview must not write into a folder that is not theirs.
    monkeypatch.delenv(folders.CACHE_ENV)
    folder = tmp_path / "flat"
    write_folder(folder, per_class=5)
    before = sorted(p.name for p in folder.rglob("*"))
    first = load("imagefolder", "train", root=folder)
    assert sorted(p.name for p in folder.rglob("*")) == before
    assert len(list((tmp_path / "home" / ".cache" / "imbagan").glob("*.npz"))) == 1
    monkeypatch.setattr(folders, "_decode_images", lambda *a, **k: pytest.fail("decoded again"))
    second = load("imagefolder", "train", root=folder)
    assert second.classes == ("cat", "dog", "eel")
    np.testing.assert_array_equal(first.x, second.x)


def test_read_only_data_folder_caches_in_the_home_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(folders.CACHE_ENV)
    folder = tmp_path / "shared"
    write_folder(folder, per_class=2)
    folder.chmod(0o555)  # read-only by its mode bits; honoured even when running as root
    try:
        load("imagefolder", "train", root=folder)
        assert not list(folder.glob(".imbagan-cache-*"))
        assert len(list((tmp_path / "home" / ".cache" / "imbagan").glob("*_shared-32px-3ch-*.npz"))) == 1
    finally:
        folder.chmod(0o755)


def test_cache_falls_back_when_a_cache_folder_cannot_be_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a folder should be, so writing there fails")
    fallback = tmp_path / "fallback"
    monkeypatch.setattr(folders, "cache_dirs", lambda folder: [blocker / "sub", fallback])
    write_folder(tmp_path / "imgs", per_class=2)
    load("imagefolder", "train", root=tmp_path / "imgs")
    assert len(list(fallback.glob("*.npz"))) == 1


def test_corrupt_cache_is_a_miss(tmp_path: Path, _isolated_env: Path) -> None:
    write_folder(tmp_path / "imgs", per_class=2)
    first = load("imagefolder", "train", root=tmp_path / "imgs")
    (cache_file,) = _isolated_env.glob("*.npz")
    cache_file.write_bytes(b"not a zip")
    second = load("imagefolder", "train", root=tmp_path / "imgs")
    np.testing.assert_array_equal(first.x, second.x)


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    write_folder(tmp_path / "imgs", per_class=2)
    bad = tmp_path / "imgs" / "dog" / "broken.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(ValueError, match="broken.png"):
        load("imagefolder", root=tmp_path / "imgs")


def test_imagefolder_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"does not exist.*class sub-folders"):
        load("imagefolder", root=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No class sub-folders"):
        load("imagefolder", root=tmp_path / "empty")
    (tmp_path / "hollow" / "cat").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="hold no images"):
        load("imagefolder", root=tmp_path / "hollow")


# --- CIFAR-10 ---------------------------------------------------------------------------


def test_cifar10_falls_back_to_the_jpeg_folders(tmp_path: Path) -> None:
    base = tmp_path / "CIFAR-10-images"
    colours = {"airplane": (250, 250, 250), "automobile": (0, 0, 0)}
    write_folder(base / "train", per_class=3, size=(32, 32), ext="jpg", classes=colours)
    write_folder(base / "test", per_class=2, size=(32, 32), ext="jpg", classes=colours)
    train = load("cifar10", "train", root=tmp_path)
    test = load("cifar10", "test", root=tmp_path)
    assert train.x.shape == (6, 3, 32, 32) and test.x.shape == (4, 3, 32, 32)
    assert train.classes == ("airplane", "automobile") and train.counts() == [3, 3]
    assert train.x[train.y == 0].min() > 240 and train.x[train.y == 1].max() < 10
    assert load("cifar10", "test", root=tmp_path, channels=1).shape == (1, 32, 32)


def test_cifar10_missing_names_both_layouts(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        load("cifar10", root=tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message
    assert "cifar-10-batches-py" in message and "CIFAR-10-images" in message
    assert "--data-root" in message


# --- argument errors --------------------------------------------------------------------


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'svhn'.*digits.*mnist.*fashion_mnist.*cifar10.*imagefolder"):
        load("svhn")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"split": "val"}, r"'val'.*'train' or 'test'"),
        ({"channels": 2}, r"1 \(grey\) or 3 \(RGB\)"),
        ({"image_size": 2}, r"4 to 1024"),
        ({"image_size": 16.5}, r"4 to 1024"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load("digits", **kwargs)


def test_dataset_name_is_forgiving() -> None:
    assert load("Digits", "test").x.shape[0] == 450
    assert os.fspath(data_root("x")).endswith("x")


@pytest.mark.parametrize("layout", ["split", "flat"])
def test_labels_without_decoding_match_a_full_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    import imbagan.data as data
    from imbagan import folders

    tmp_path = tmp_path / "images"  # tmp_path itself also holds the test's cache folder
    if layout == "split":
        write_folder(tmp_path / "train", per_class=4)
        write_folder(tmp_path / "test", per_class=2)
    else:
        write_folder(tmp_path, per_class=5)
    want = {s: load("imagefolder", s, root=tmp_path) for s in ("train", "test")}

    def no_decoding(*a, **k):
        raise AssertionError("load_labels must not decode images")

    monkeypatch.setattr(folders, "_decode_images", no_decoding)
    for split, s in want.items():
        y, classes = data.load_labels("imagefolder", split, root=tmp_path)
        np.testing.assert_array_equal(y, s.y)
        assert classes == s.classes
    y, classes = data.load_labels("digits", "train")
    assert len(y) == 1347 and classes[0] == "0"
