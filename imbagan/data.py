"""Load benchmark and user image datasets as uint8 arrays.

Every loader returns an :class:`ImageSet` with images ``x`` of shape (N, C, H, W) in
0..255 and integer labels ``y``. Nothing is downloaded unless ``download=True``; when
files are missing the error says where we looked and what we expected to find.

Decoded image folders are cached as ``.npz`` files (in $IMBAGAN_CACHE or ~/.cache/imbagan, never
in the data folder) so the second load of a large folder (e.g. 50,000 CIFAR-10 JPEGs) takes a
fraction of a second instead of several seconds. Folder scans do not follow directory symlinks and
stop with a clear error past MAX_SCAN_ENTRIES or MAX_SCAN_SECONDS.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_ROOT_ENV = "IMBAGAN_DATA"
CACHE_ENV = "IMBAGAN_CACHE"
SPLITS = ("train", "test")

# Bump when the decoding or the cache layout changes, so old cache files are ignored.
_CACHE_VERSION = 1
# Fraction of each class held out as the test split of a folder without train/ and test/.
_HOLDOUT_FRACTION = 0.2
_HOLDOUT_SEED = 0
# Below this many pixels per image, per-image Python overhead dominates the decode and a
# thread pool is slower than one thread (GIL contention: 50k CIFAR JPEGs take ~5.5 s
# serially but ~8 s on 2 threads); above it, PIL's GIL-free decoding makes threads pay off.
_THREADED_MIN_PIXELS = 96 * 96
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# A folder scan stops with a clear error past these bounds (a data folder of "/" or a huge tree), so
# neither a worker nor the Data page's preview can hang on one. Directory symlinks are never followed.
MAX_SCAN_ENTRIES = 2_000_000
MAX_SCAN_SECONDS = 60.0
# Decoded images larger than this are refused before decoding (a 15000x15000 PNG of 220 KB would
# take gigabytes); uploads are checked against the same limit when they are unpacked.
MAX_IMAGE_PIXELS = 4096 * 4096
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


@dataclass(frozen=True)
class ImageSet:
    """Images ``x`` (uint8, N x C x H x W), labels ``y`` (int64, N) and class names."""

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.x, np.ndarray) or self.x.dtype != np.uint8 or self.x.ndim != 4:
            raise ValueError("ImageSet.x must be a uint8 array of shape (N, C, H, W).")
        y = np.asarray(self.y)
        if y.ndim != 1 or len(y) != len(self.x) or (y.size and y.dtype.kind not in "iu"):
            raise ValueError(
                f"ImageSet.y must be one integer label per image; got shape {y.shape} "
                f"for {len(self.x)} images."
            )
        object.__setattr__(self, "y", y.astype(np.int64, copy=False))
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        if y.size and (y.min() < 0 or y.max() >= len(self.classes)):
            raise ValueError(
                f"ImageSet labels must lie in 0..{len(self.classes) - 1} "
                f"(one per class name); found {int(y.min())}..{int(y.max())}."
            )

    def __len__(self) -> int:
        return len(self.y)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one image, (C, H, W)."""
        _, c, h, w = self.x.shape
        return (c, h, w)

    def counts(self) -> list[int]:
        """Number of images per class, indexed like ``classes``."""
        return np.bincount(self.y, minlength=len(self.classes)).tolist()


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
        return _load_imagefolder(images, split, image_size or 32, channels or 3, False)
    raise FileNotFoundError(
        f"CIFAR-10 not found in {root}. Expected either {batches} (torchvision's "
        f"data_batch_1..5, test_batch, batches.meta) or {images}/train/<class>/*.jpg and "
        f"{images}/test/<class>/*.jpg (one JPEG per image). {_HOW_TO_FIX}"
    )


# ---------------------------------------------------------------------------------------
# Image folders (torchvision ImageFolder layout) with an on-disk cache


def _class_names(folder: Path) -> list[str]:
    """Sorted class sub-folder names, skipping hidden ones (.ipynb_checkpoints, caches)."""
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Image folder {folder} does not exist. Expected class sub-folders holding "
            f"images, e.g. {folder}/cat/001.png and {folder}/dog/001.png (optionally inside "
            f"train/ and test/). Point --data-root (or IMBAGAN_DATA) at such a folder."
        )
    names = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    if not names:
        raise FileNotFoundError(
            f"No class sub-folders found in {folder}. Expected one folder per class holding "
            f"its images, e.g. {folder}/cat/001.png and {folder}/dog/001.png."
        )
    return names


class _Scan:
    """Bounds one folder scan by entries seen and seconds spent."""

    def __init__(self, folder: Path):
        self.folder, self.entries, self.t0 = folder, 0, time.monotonic()

    def tick(self, n: int) -> None:
        self.entries += n
        if self.entries > MAX_SCAN_ENTRIES:
            raise ValueError(
                f"{self.folder} holds more than {MAX_SCAN_ENTRIES:,} files and folders; that is not an "
                f"image folder. Point the data folder at a folder of class folders.")
        if time.monotonic() - self.t0 > MAX_SCAN_SECONDS:
            raise ValueError(
                f"Listing {self.folder} took more than {MAX_SCAN_SECONDS:.0f} s ({self.entries:,} entries "
                f"so far); point the data folder at a smaller folder of class folders.")


def _walk(top: Path, scan: _Scan):
    """os.walk that never follows directory symlinks and stops at the scan's bounds.

    Yields (dirpath, filenames) in torchvision ImageFolder's order (sorted walk, sorted names).
    """
    out = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        scan.tick(1 + len(dirnames) + len(filenames))
        out.append((dirpath, sorted(filenames)))
    out.sort()
    return out


def _enumerate(folder: Path, classes: list[str], allow_empty: bool) -> tuple[list[str], np.ndarray]:
    """List (paths, labels) like torchvision's ImageFolder, with the given class list.

    A fixed class list keeps test labels aligned with train even if test/ lacks a class. Unlike
    ImageFolder, directory symlinks are not followed (a link loop would never end) and the scan is
    bounded by MAX_SCAN_ENTRIES and MAX_SCAN_SECONDS.
    """
    scan = _Scan(folder)
    paths: list[str] = []
    labels: list[int] = []
    empty = []
    for i, c in enumerate(classes):
        n = len(paths)
        top = folder / c
        if top.is_dir():
            for dirpath, filenames in _walk(top, scan):
                for name in filenames:
                    if name.lower().endswith(_IMAGE_EXTENSIONS):
                        paths.append(os.path.join(dirpath, name))
                        labels.append(i)
        if len(paths) == n:
            empty.append(c)
    if empty and not allow_empty:
        raise FileNotFoundError(
            f"Some class folders in {folder} hold no images (Found no valid file for the classes "
            f"{', '.join(sorted(empty))}). Every class needs at least one image with one of the "
            f"extensions {', '.join(_IMAGE_EXTENSIONS)}."
        )
    return paths, np.asarray(labels, dtype=np.int64)


def _fingerprint(folder: Path, classes: list[str]) -> str:
    """Hash of every image's name, size and mtime: changes whenever the files change."""
    h = hashlib.sha1()
    count = 0
    scan = _Scan(folder)
    for c in classes:
        for dirpath, filenames in _walk(folder / c, scan):
            rel = os.path.relpath(dirpath, folder)
            for name in filenames:
                if name.lower().endswith(_IMAGE_EXTENSIONS):
                    try:
                        st = os.stat(os.path.join(dirpath, name))
                    except OSError:  # a dangling file symlink: the decode names it
                        continue
                    h.update(f"{rel}/{name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
                    count += 1
    return f"{count}-{h.hexdigest()}"


def image_size_error(name: str, size: tuple[int, int]) -> str | None:
    """The sentence refusing an image of ``size`` (w, h) pixels, or None when it is within the limit."""
    w, h = size
    if w * h <= MAX_IMAGE_PIXELS:
        return None
    side = int(MAX_IMAGE_PIXELS ** 0.5)
    return (f"{name} is {w:,}x{h:,} pixels; images may have at most {side:,}x{side:,} "
            f"({MAX_IMAGE_PIXELS / 1e6:.1f} million) pixels. Shrink it or leave it out.")


def _to_8bit(im):
    """16-bit and 32-bit integer or float greyscale as 8-bit "L", scaled rather than clipped.

    PIL's convert("L") clips such images at 255, so a 0..65535 gradient would come out nearly all
    white. 16-bit ("I;16*", or "I" holding values above 255) is divided by 257 (65535 -> 255); float
    images in 0..1 are multiplied by 255, others are taken as 0..255 (or 16-bit when above 255).
    """
    from PIL import Image

    if im.mode not in ("I", "F") and not im.mode.startswith("I;16"):
        return im
    a = np.asarray(im, dtype=np.float64)
    a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    top = float(a.max()) if a.size else 0.0
    if im.mode.startswith("I;16") or top > 255:
        a = a / 257.0
    elif im.mode == "F" and top <= 1.0:
        a = a * 255.0
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")


def _decode_one(path: str, size: int, mode: str) -> np.ndarray:
    """Decode one image to (size, size, C) uint8: centre-crop to square, then resize."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            too_big = image_size_error(f"Image {path}", im.size)  # from the header, before decoding
            if too_big:
                raise ValueError(too_big)
            # For JPEGs, let libjpeg decode at a reduced scale (>= size): much faster for photos.
            im.draft(mode, (size, size))
            im = _to_8bit(im).convert(mode)
    except Image.DecompressionBombError as e:
        raise ValueError(f"Image {path} is too large to decode safely ({e}); shrink it or leave it out.") from e
    except (OSError, ValueError) as e:
        if isinstance(e, ValueError) and str(e).startswith(f"Image {path} is "):
            raise
        raise ValueError(f"Could not read image {path} ({e}); remove or replace the file.") from e
    w, h = im.size
    if w != h:  # crop rather than stretch, so objects keep their proportions
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        im = im.crop((left, top, left + side, top + side))
    if im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR)
    a = np.asarray(im)
    return a[:, :, None] if a.ndim == 2 else a


def _decode_images(paths: list[str], size: int, channels: int) -> np.ndarray:
    """Decode image files to (N, C, size, size) uint8, in threads when images are large."""
    from PIL import Image

    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(paths), size, size, channels), dtype=np.uint8)
    if not paths:
        return out.transpose(0, 3, 1, 2)

    def work(start: int, stop: int) -> None:
        for i in range(start, stop):
            out[i] = _decode_one(paths[i], size, mode)

    try:
        with Image.open(paths[0]) as im:  # reads the header only
            pixels = im.size[0] * im.size[1]
    except Exception:  # unreadable or a decompression bomb
        pixels = 0  # the decode below reports the unreadable file properly
    workers = min(8, os.cpu_count() or 1) if pixels >= _THREADED_MIN_PIXELS else 1
    if workers == 1:
        work(0, len(paths))
    else:
        step = 256
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(work, s, min(s + step, len(paths))) for s in range(0, len(paths), step)
            ]
            for f in futures:
                f.result()  # re-raises a decoding error from the worker
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _cache_dirs(folder: Path) -> list[Path]:
    """Where cache files live: $IMBAGAN_CACHE, else ~/.cache/imbagan; never inside a data folder.

    A data folder may belong to someone else (the app lets anyone pick one), so nothing is written there.
    """
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return [Path(os.path.expanduser(explicit))]
    return [Path.home() / ".cache" / "imbagan"]


def _cache_name(folder: Path, key: dict) -> str:
    digest = hashlib.sha1(
        json.dumps({k: key[k] for k in ("folder", "split", "size", "channels")}).encode()
    ).hexdigest()[:12]
    # Readable in a shared cache folder: e.g. CIFAR-10-images_train-32px-3ch-<hash>.npz
    slug = "_".join(part for part in folder.parts[-2:] if part not in ("/", ""))
    return f"{slug}-{key['size']}px-{key['channels']}ch-{digest}.npz"


def _read_cache(path: Path, key: dict) -> ImageSet | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != json.dumps(key, sort_keys=True):
                return None
            return ImageSet(z["x"], z["y"], tuple(z["classes"].tolist()))
    except Exception:  # a truncated or foreign file is just a cache miss
        return None


def _write_cache(dirs: list[Path], folder: Path, key: dict, data: ImageSet) -> None:
    for d in dirs:
        tmp = None
        try:
            d.mkdir(parents=True, exist_ok=True)
            target = d / _cache_name(folder, key)
            tmp = d / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
            with open(tmp, "wb") as f:
                np.savez(
                    f,
                    x=data.x,
                    y=data.y,
                    classes=np.array(data.classes, dtype=str),
                    key=np.array(json.dumps(key, sort_keys=True)),
                )
            os.replace(tmp, target)  # atomic: readers never see a half-written cache
            return
        except OSError:
            if tmp is not None and tmp.exists():
                tmp.unlink(missing_ok=True)
            continue  # a cache folder that cannot be written: try the next place
    warnings.warn(
        f"Could not write a cache for {folder} in any of {', '.join(map(str, dirs))}; "
        f"the next load will decode the images again.",
        stacklevel=3,
    )


def _decode_folder_cached(
    folder: Path, split: str, classes: list[str], size: int, channels: int, allow_empty: bool
) -> ImageSet:
    """Decode every image under ``folder``'s class folders, through the on-disk cache."""
    key = {
        "version": _CACHE_VERSION,
        "folder": str(folder.absolute()),
        "split": split,
        "size": size,
        "channels": channels,
        "classes": classes,
        "fingerprint": _fingerprint(folder, classes),
    }
    dirs = _cache_dirs(folder)
    for d in dirs:
        hit = _read_cache(d / _cache_name(folder, key), key)
        if hit is not None:
            return hit
    paths, labels = _enumerate(folder, classes, allow_empty)
    data = ImageSet(_decode_images(paths, size, channels), labels, tuple(classes))
    _write_cache(dirs, folder, key, data)
    return data


def _holdout_mask(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Seeded stratified hold-out: True for about ``fraction`` of each class."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        # Keep at least one image of every class for training.
        n_test = min(int(round(len(idx) * fraction)), len(idx) - 1)
        if n_test > 0:
            mask[rng.choice(idx, size=n_test, replace=False)] = True
    return mask


def _load_imagefolder(
    root: Path, split: str, image_size: int | None, channels: int | None, download: bool
) -> ImageSet:
    """Class sub-folders under ``root`` (or under ``root/train`` and ``root/test``)."""
    size, ch = image_size or 32, channels or 3
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes = _class_names(root / "train")
        if split == "test":
            extra = sorted(set(_class_names(root / "test")) - set(classes))
            if extra:
                raise ValueError(
                    f"{root / 'test'} has class folder(s) {', '.join(extra)} that "
                    f"{root / 'train'} lacks; train/ and test/ need the same classes."
                )
        return _decode_folder_cached(root / split, split, classes, size, ch, split == "test")
    classes = _class_names(root)
    full = _decode_folder_cached(root, "all", classes, size, ch, False)
    test = _holdout_mask(full.y, _HOLDOUT_FRACTION, _HOLDOUT_SEED)
    keep = test if split == "test" else ~test
    return ImageSet(full.x[keep], full.y[keep], full.classes)


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
        _load_imagefolder,
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
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        classes = _class_names(folder / "train")
        _, y = _enumerate(folder / split, classes, split == "test")
        return y, tuple(classes)
    classes = _class_names(folder)
    _, y = _enumerate(folder, classes, False)
    test = _holdout_mask(y, _HOLDOUT_FRACTION, _HOLDOUT_SEED)
    return y[test if split == "test" else ~test], tuple(classes)
