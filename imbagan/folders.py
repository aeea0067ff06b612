"""Image folders in torchvision's ImageFolder layout, decoded once and cached on disk.

A folder holds one sub-folder per class (optionally inside ``train/`` and ``test/``; without them a
seeded stratified fifth of each class is the test split). Decoded folders are cached as ``.npz`` files
in $IMBAGAN_CACHE or ~/.cache/imbagan, never in the data folder, so the second load of 50,000 CIFAR-10
JPEGs takes a fraction of a second. Scans never follow directory symlinks and stop with a clear error
past MAX_SCAN_ENTRIES or MAX_SCAN_SECONDS; images over MAX_IMAGE_PIXELS are refused before decoding.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from imbagan.imageset import ImageSet

CACHE_ENV = "IMBAGAN_CACHE"
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


def class_names(folder: Path) -> list[str]:
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


def cache_dirs(folder: Path) -> list[Path]:
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
    dirs = cache_dirs(folder)
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


def load_imagefolder(
    root: Path, split: str, image_size: int | None, channels: int | None, download: bool
) -> ImageSet:
    """Class sub-folders under ``root`` (or under ``root/train`` and ``root/test``)."""
    size, ch = image_size or 32, channels or 3
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes = class_names(root / "train")
        if split == "test":
            extra = sorted(set(class_names(root / "test")) - set(classes))
            if extra:
                raise ValueError(
                    f"{root / 'test'} has class folder(s) {', '.join(extra)} that "
                    f"{root / 'train'} lacks; train/ and test/ need the same classes."
                )
        return _decode_folder_cached(root / split, split, classes, size, ch, split == "test")
    classes = class_names(root)
    full = _decode_folder_cached(root, "all", classes, size, ch, False)
    test = _holdout_mask(full.y, _HOLDOUT_FRACTION, _HOLDOUT_SEED)
    keep = test if split == "test" else ~test
    return ImageSet(full.x[keep], full.y[keep], full.classes)


def folder_labels(folder: Path, split: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels and class names of a folder's split from the file listing alone (nothing decoded)."""
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        classes = class_names(folder / "train")
        _, y = _enumerate(folder / split, classes, split == "test")
        return y, tuple(classes)
    classes = class_names(folder)
    _, y = _enumerate(folder, classes, False)
    test = _holdout_mask(y, _HOLDOUT_FRACTION, _HOLDOUT_SEED)
    return y[test if split == "test" else ~test], tuple(classes)
