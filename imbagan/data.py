"""Load benchmark and user image datasets as uint8 arrays.

Every loader returns an :class:`ImageSet` with images ``x`` of shape (N, C, H, W) in
0..255 and integer labels ``y``. Nothing is downloaded unless ``download=True``; when
files are missing the error says where we looked and what we expected to find.

This module is the registry (DATASETS), the data root and its allowed folders, and the loaders of
the bundled and benchmark datasets. Image folders, and their on-disk cache, are read by
:mod:`imbagan.folders`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imbagan.folders import folder_labels, load_imagefolder
from imbagan.imageset import ImageSet

DEFAULT_ROOT_ENV = "IMBAGAN_DATA"
SPLITS = ("train", "test")
ALLOWED_ROOTS_ENV = "IMBAGAN_ALLOWED_ROOTS"

_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

_HOW_TO_FIX = (
    "Point --data-root (or the IMBAGAN_DATA environment variable) at a folder that holds "
    "them, or pass download=True on a machine with internet access."
)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Return the data folder: ``root`` if given, else ``$IMBAGAN_DATA``, else ``./data``."""
    if root is None or str(root) == "":
        root = os.environ.get(DEFAULT_ROOT_ENV) or "data"
    # Absolute so that error messages and cache keys name an unambiguous folder.
    return Path(os.path.abspath(os.path.expanduser(os.fspath(root))))


def allowed_roots() -> list[Path]:
    """Folders the app may read data from: the data root, its uploads, and $IMBAGAN_ALLOWED_ROOTS.

    The upload folder lives under the data root; scikit-learn's bundled digits need no folder at all.
    Extra roots are separated by os.pathsep. Paths are resolved (symlinks followed) once, here.
    """
    extra = [p for p in os.environ.get(ALLOWED_ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    return [Path(os.path.realpath(os.path.expanduser(p))) for p in [str(data_root()), *extra]]


def check_allowed(root: str | os.PathLike | None) -> Path:
    """``root`` resolved, if it lies inside an allowed root; else ValueError naming the roots only.

    For the app, where anyone who reaches the page can type a path: symlinks are resolved before the
    check, and the message never lists what the refused folder holds.
    """
    path = Path(os.path.realpath(data_root(root)))
    roots = allowed_roots()
    if any(path == r or r in path.parents for r in roots):
        return path
    if not path.exists():  # most often a typo: say that first (a missing folder holds nothing to hide)
        raise ValueError(f"{data_root(root)} does not exist: check its spelling. This app reads data folders "
                         f"under {', '.join(map(str, roots))}.")
    raise ValueError(
        f"{data_root(root)} is outside the folders this app may read: {', '.join(map(str, roots))}. "
        f"Put the data under one of them, or allow another folder with the {ALLOWED_ROOTS_ENV} "
        f"environment variable (separate several with '{os.pathsep}') when starting the app."
    )




Loader = Callable[[Path, str, "int | None", "int | None", bool], ImageSet]


@dataclass(frozen=True)
class DatasetInfo:
    """Registry entry: what a dataset is and how to load it."""

    title: str
    description: str
    needs_root: bool  # False when the data ships with a library (no files needed)
    loader: Loader  # (root, split, image_size, channels, download) -> ImageSet
    image_size: int  # native / default square size
    channels: int  # native / default channel count


# ---------------------------------------------------------------------------------------
# Array helpers


def _to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Convert (N, C, H, W) uint8 between grey and RGB."""
    if x.shape[1] == channels:
        return x
    if channels == 3:
        return np.repeat(x, 3, axis=1)
    # ITU-R 601 luma with integer rounding, the same weights PIL uses for mode "L".
    rgb = x.astype(np.uint32)
    grey = (rgb[:, 0] * 299 + rgb[:, 1] * 587 + rgb[:, 2] * 114 + 500) // 1000
    return grey[:, None].astype(np.uint8)


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of (N, C, H, W) uint8 images to size x size."""
    if x.shape[2] == size and x.shape[3] == size:
        return x
    import torch
    import torch.nn.functional as F

    downscale = size < max(x.shape[2], x.shape[3])
    out = np.empty((len(x), x.shape[1], size, size), dtype=np.uint8)
    # Chunks keep the float32 copy small (60k MNIST images would need ~190 MB at once).
    for start in range(0, len(x), 8192):
        chunk = torch.from_numpy(x[start : start + 8192]).float()
        chunk = F.interpolate(
            chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=downscale
        )
        out[start : start + 8192] = chunk.round().clamp(0, 255).to(torch.uint8).numpy()
    return out


def _adapt(x: np.ndarray, image_size: int | None, channels: int | None) -> np.ndarray:
    """Bring decoded images to the requested size and channel count."""
    if channels == 1:  # to grey before resizing: a third of the work
        x = _to_channels(x, 1)
    if image_size is not None:
        x = _resize(x, image_size)
    if channels == 3:  # to RGB after resizing, for the same reason
        x = _to_channels(x, 3)
    return np.ascontiguousarray(x)


# ---------------------------------------------------------------------------------------
# digits (scikit-learn, bundled)


def _upscale_bilinear(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W) float32 -> (N, size, size), like torch's bilinear resize (align_corners=False).

    numpy only, so the app's process can show digits without importing torch. Used for whole-number
    upscales (8 -> 16, 32, 64 px), where it gives torch's pixels exactly (tests/test_no_torch.py).
    """

    def axis(n_in: int):
        src = (np.arange(size, dtype=np.float32) + np.float32(0.5)) * np.float32(n_in / size) - np.float32(0.5)
        src = np.maximum(src, np.float32(0))
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        w1 = (src - i0).astype(np.float32)
        return i0, np.minimum(i0 + 1, n_in - 1), np.float32(1) - w1, w1

    y0, y1, wy0, wy1 = axis(images.shape[1])
    x0, x1, wx0, wx1 = axis(images.shape[2])
    rows = images[:, y0] * wy0[None, :, None] + images[:, y1] * wy1[None, :, None]
    return rows[:, :, x0] * wx0 + rows[:, :, x1] * wx1


def _load_digits(
    root: Path, split: str, image_size: int | None, channels: int | None, download: bool
) -> ImageSet:
    """scikit-learn's 8x8 digits, upsampled to 16x16 grey by default."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    y = digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=0.25, random_state=0, stratify=y
    )
    # Sorted so the split keeps the dataset's own order (profiles like bagan_gp rely on it).
    idx = np.sort(train_idx if split == "train" else test_idx)

    size = image_size or 16
    # Resize from the original 8x8 floats (not from a 16x16 copy) to avoid resampling twice.
    if size >= 8 and size % 8 == 0:
        x = _upscale_bilinear((digits.images[idx] / 16.0).astype(np.float32), size)
        x = np.clip(np.round(x * np.float32(255)), 0, 255).astype(np.uint8)[:, None]
    else:
        import torch
        import torch.nn.functional as F

        images = torch.from_numpy(digits.images[idx] / 16.0).float()[:, None]
        images = F.interpolate(
            images, size=(size, size), mode="bilinear", align_corners=False, antialias=size < 8
        )
        x = (images * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    classes = tuple(str(int(c)) for c in digits.target_names)
    return ImageSet(_adapt(x, None, channels), y[idx], classes)


# ---------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST (torchvision raw IDX files)


def _mnist_like(torchvision_name: str, title: str) -> Loader:
    def loader(
        root: Path, split: str, image_size: int | None, channels: int | None, download: bool
    ) -> ImageSet:
        import torchvision.datasets as tvd

        cls = getattr(tvd, torchvision_name)
        raw = root / torchvision_name / "raw"
        processed = root / torchvision_name / "processed"
        have_raw = all((raw / f).is_file() for f in _MNIST_FILES)
        # torchvision still reads its old processed/*.pt format, so accept that too.
        have_legacy = all((processed / f).is_file() for f in ("training.pt", "test.pt"))
        if not (have_raw or have_legacy or download):
            missing = [f for f in _MNIST_FILES if not (raw / f).is_file()]
            gz = " (if you only have the .gz files, gunzip them there)" if any(
                (raw / f"{f}.gz").is_file() for f in missing
            ) else ""
            raise FileNotFoundError(
                f"{title} files not found in {raw}. Expected the uncompressed IDX files "
                f"{', '.join(_MNIST_FILES)}; missing: {', '.join(missing)}{gz}. {_HOW_TO_FIX}"
            )
        try:
            ds = cls(str(root), train=split == "train", download=download)
        except (RuntimeError, OSError) as e:
            # torchvision reports both a failed download and unreadable files this way.
            raise FileNotFoundError(
                f"Could not load {title} from {raw}: {e}. {_HOW_TO_FIX}"
            ) from e
        x = ds.data.numpy()[:, None]
        y = ds.targets.numpy().astype(np.int64)
        return ImageSet(_adapt(x, image_size, channels), y, tuple(ds.classes))

    return loader


# ---------------------------------------------------------------------------------------
# CIFAR-10 (torchvision pickled batches, or the per-image JPEG copy)


def _load_cifar10(
    root: Path, split: str, image_size: int | None, channels: int | None, download: bool
) -> ImageSet:
    """CIFAR-10 from ``cifar-10-batches-py`` or, failing that, ``CIFAR-10-images``."""
    batches = root / "cifar-10-batches-py"
    images = root / "CIFAR-10-images"
    if batches.is_dir() or (download and not images.is_dir()):
        import torchvision.datasets as tvd

        try:
            ds = tvd.CIFAR10(str(root), train=split == "train", download=download)
        except (RuntimeError, OSError) as e:
            raise FileNotFoundError(
                f"Could not load CIFAR-10 from {batches}: {e}. {_HOW_TO_FIX}"
            ) from e
        x = np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2))  # NHWC -> NCHW
        y = np.asarray(ds.targets, dtype=np.int64)
        return ImageSet(_adapt(x, image_size, channels), y, tuple(ds.classes))
    if (images / "train").is_dir() and (images / "test").is_dir():
        # Folder names sort alphabetically, which is also CIFAR-10's own label order.
        return load_imagefolder(images, split, image_size or 32, channels or 3, False)
    raise FileNotFoundError(
        f"CIFAR-10 not found in {root}. Expected either {batches} (torchvision's "
        f"data_batch_1..5, test_batch, batches.meta) or {images}/train/<class>/*.jpg and "
        f"{images}/test/<class>/*.jpg (one JPEG per image). {_HOW_TO_FIX}"
    )


# ---------------------------------------------------------------------------------------
# Registry and entry point


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "Digits (scikit-learn)",
        "1,797 handwritten digits, 8x8 upsampled to 16x16 grey; bundled, no files needed.",
        False,
        _load_digits,
        16,
        1,
    ),
    "mnist": DatasetInfo(
        "MNIST",
        "70,000 handwritten digits, 28x28 grey; torchvision raw IDX files in <root>/MNIST/raw.",
        True,
        _mnist_like("MNIST", "MNIST"),
        28,
        1,
    ),
    "fashion_mnist": DatasetInfo(
        "Fashion-MNIST",
        "70,000 clothing images in 10 classes, 28x28 grey; IDX files in <root>/FashionMNIST/raw.",
        True,
        _mnist_like("FashionMNIST", "Fashion-MNIST"),
        28,
        1,
    ),
    "cifar10": DatasetInfo(
        "CIFAR-10",
        "60,000 colour photos in 10 classes, 32x32 RGB; cifar-10-batches-py or CIFAR-10-images.",
        True,
        _load_cifar10,
        32,
        3,
    ),
    "imagefolder": DatasetInfo(
        "Image folder",
        "Your own images: one sub-folder per class (optionally inside train/ and test/).",
        True,
        load_imagefolder,
        32,
        3,
    ),
}


def load(
    name: str,
    split: str = "train",
    root: str | os.PathLike | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    download: bool = False,
) -> ImageSet:
    """Load a dataset split as an :class:`ImageSet`.

    ``root`` is the data folder (see :func:`data_root`); for ``imagefolder`` it is the image
    folder itself. ``image_size`` resizes to a square, ``channels`` (1 or 3) converts between
    grey and RGB; ``None`` keeps the dataset's own (``DATASETS[name].image_size/channels``).
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}.")
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; use 'train' or 'test'.")
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer))
        or not 4 <= image_size <= 1024
    ):
        raise ValueError(f"image_size must be an integer from 4 to 1024; got {image_size!r}.")
    if channels is not None and channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB); got {channels!r}.")
    info = DATASETS[key]
    return info.loader(
        data_root(root), split, None if image_size is None else int(image_size), channels, download
    )


def load_labels(name: str, split: str = "train", root: str | os.PathLike | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels and class names of a split without decoding images where that is avoidable.

    Image folders (and the CIFAR-10 JPEG copy) are only listed, so a page can show class counts
    of 50,000 JPEGs at once; the other datasets are small or already decoded and go through load().
    """
    key = str(name).strip().lower().replace("-", "_")
    base = data_root(root)
    folder = None
    if key == "imagefolder":
        folder = base
    elif key == "cifar10" and not (base / "cifar-10-batches-py").is_dir():
        folder = base / "CIFAR-10-images"
        if not ((folder / "train").is_dir() and (folder / "test").is_dir()):
            folder = None  # load() raises the message naming the expected files
    if folder is None:
        s = load(key, split, root)
        return s.y, s.classes
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; use 'train' or 'test'.")
    return folder_labels(folder, split)
