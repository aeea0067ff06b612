"""What the Data and Train pages show of the data, computed without Streamlit (runs side by side: comparison.py).

- :func:`class_grid`: real training images, one row per class, as ONE composite PNG (minority rows starred).
- :func:`extract_zip`: a user's ``.zip`` of class folders unpacked safely under ``<data folder>/uploads/<name>``.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from imbagan import data as datasets
from imbagan import folders
from imbagan.config import DATA_FIELDS, TrainConfig

# --- what the app may read, and errors as sentences ---------------------------------------------

def data_root_error(cfg: TrainConfig) -> str | None:
    """Why the app may not read the config's data folder (outside the allowed roots), or None.

    Anyone who reaches the app can type a path; only the data root ($IMBAGAN_DATA, holding the uploads)
    and $IMBAGAN_ALLOWED_ROOTS are readable. Bundled datasets (digits) need no folder.
    """
    if not datasets.DATASETS[cfg.dataset].needs_root:
        return None
    try:
        datasets.check_allowed(cfg.data_root)
    except ValueError as e:
        return str(e)
    return None


def error_sentence(e: BaseException) -> str:
    """One sentence for the page about an unexpected failure; the traceback goes to the app's log."""
    if isinstance(e, (ValueError, FileNotFoundError)) and str(e):
        return str(e)
    if isinstance(e, OSError) and e.errno:
        where = f" ({e.filename})" if e.filename else ""
        return f"That did not work: {os.strerror(e.errno).lower()}{where}."
    return f"That did not work ({type(e).__name__}: {e}); the details are in the app's log."


# --- real-image grid --------------------------------------------------------------------------



def data_fields(cfg: TrainConfig) -> dict:
    """The config's data and imbalance fields (what a data choice carries), JSON-friendly (lists, not tuples)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in ((k, getattr(cfg, k)) for k in DATA_FIELDS)}


def class_grid(cfg: TrainConfig, per_class: int = 8) -> bytes:
    """PNG bytes: ``per_class`` real training images per class (after the imbalance), one row per class.

    Rows are labelled ``name (count)`` and minority rows (fewer than half the largest class) are starred, like
    the run's sample grids, so the two compare at a glance. A class with fewer images than ``per_class``
    leaves its remaining cells grey. Images are picked with a generator seeded by ``cfg.seed``.
    """
    from imbagan.grids import compose_png  # numpy and PIL only: the app's process never imports torch
    from imbagan.imbalance import minority_classes
    from imbagan.splits import load_split

    if per_class < 1:
        raise ValueError(f"per_class must be at least 1 (got {per_class}).")
    train_set, _ = load_split(cfg, "train")
    counts = train_set.counts()
    rng = np.random.default_rng(cfg.seed)
    c, h, w = train_set.shape
    cells = np.full((len(counts) * per_class, c, h, w), 128, dtype=np.uint8)  # grey: no image
    for k in range(len(counts)):
        idx = np.flatnonzero(train_set.y == k)
        pick = np.sort(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
        cells[k * per_class: k * per_class + len(pick)] = train_set.x[pick]
    labels = [f"{name} ({n:,})" for name, n in zip(train_set.classes, counts)]
    with tempfile.TemporaryDirectory(prefix="imbagan-grid-") as tmp:
        path = Path(tmp) / "grid.png"
        compose_png(cells, path, per_class, labels, minority_classes(counts))
        return path.read_bytes()


# --- uploads ----------------------------------------------------------------------------------

MAX_COMPRESSED = 200 * 1024 ** 2  # the zip itself (Streamlit's default upload limit too)
MAX_UNCOMPRESSED = 500 * 1024 ** 2  # the images once extracted: guards against zip bombs
MAX_FILES = 100_000
MAX_IMAGE_PIXELS = folders.MAX_IMAGE_PIXELS  # per image, read from its header (4096x4096)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
UPLOADS = "uploads"
_TMP_PREFIX = ".tmp-"


def uploads_root(root: str | os.PathLike | None = None) -> Path:
    """Where uploaded folders live: ``<data folder>/uploads`` ($IMBAGAN_DATA/uploads, else ./data/uploads)."""
    return datasets.data_root(root) / UPLOADS


def upload_name(filename: str) -> str:
    """A folder name from an uploaded file's name: letters, digits, '.', '_' and '-' only."""
    stem = Path(str(filename).replace("\\", "/")).name
    stem = stem[:-4] if stem.lower().endswith(".zip") else stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip(".-")[:64] or "upload"


@dataclass(frozen=True)
class Upload:
    """An extracted upload: the image-folder root to train on, its classes and what was left out."""

    name: str
    path: Path
    classes: tuple[str, ...]
    images: int
    skipped: int  # non-image files and hidden/metadata entries that were not extracted


def _member_parts(info: zipfile.ZipInfo) -> list[str]:
    """The entry's path components, after refusing anything that could land outside the target folder."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise ValueError(f"The zip holds an absolute path ({info.filename!r}); refusing to extract it.")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"The zip holds a path that climbs out of its folder ({info.filename!r}); "
                         "refusing to extract it.")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ValueError(f"The zip holds a symbolic link ({info.filename!r}); refusing to extract it.")
    if info.flag_bits & 0x1:
        raise ValueError(f"The zip entry {info.filename!r} is encrypted; upload an unencrypted zip.")
    return parts


def _is_junk(parts: list[str]) -> bool:
    """macOS resource forks, .DS_Store and other hidden entries: never images a user meant to upload."""
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _check_pixels(path: Path, shown: str) -> None:
    """Refuse a pixel bomb from its header alone: PIL reads the size without decoding the pixels."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            size = im.size
    except Image.DecompressionBombError:
        size = (10 ** 9, 1)  # PIL refuses it itself: far beyond our limit too
    except Exception:  # not an image PIL knows; training names the file if it cannot be read
        return
    too_big = folders.image_size_error(f"The zip's image {shown}", size)
    if too_big:
        raise ValueError(too_big)


def _image_folder_root(folder: Path) -> Path:
    """Descend through wrapper folders (``mydata/cat/...`` zipped as ``mydata/``) to the class folders."""
    while True:
        subdirs = [e for e in folder.iterdir() if e.is_dir()]
        files = [e for e in folder.iterdir() if e.is_file()]
        if len(subdirs) == 1 and not files and any(e.is_dir() for e in subdirs[0].iterdir()):
            folder = subdirs[0]
        else:
            return folder


def _class_folders(folder: Path) -> list[Path]:
    split = folder / "train"
    base = split if split.is_dir() and (folder / "test").is_dir() else folder
    return sorted(e for e in base.iterdir() if e.is_dir())


def extract_zip(src: str | os.PathLike | IO[bytes], name: str, root: str | os.PathLike | None = None,
                max_compressed: int = MAX_COMPRESSED, max_uncompressed: int = MAX_UNCOMPRESSED,
                max_files: int = MAX_FILES) -> Upload:
    """Unpack a zip of class folders into ``uploads_root(root)/<name>`` (a fresh name if that exists).

    Every entry is checked before anything is written: no absolute paths, no ``..``, no symbolic links, no
    encryption, at most ``max_files`` images and ``max_uncompressed`` bytes. Only image files are written
    (other files are counted in ``skipped``). The zip is unpacked into a hidden temporary folder and moved in
    place at the end, so a failed upload leaves nothing behind. Images over ``MAX_IMAGE_PIXELS`` are refused
    from their headers. Raises ValueError with the reason, whatever went wrong with the zip.
    """
    try:
        return _extract_zip(src, name, root, max_compressed, max_uncompressed, max_files)
    except ValueError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise ValueError(f"The zip is damaged and cannot be unpacked ({e}).") from e
    except NotImplementedError as e:  # e.g. an unsupported compression method
        raise ValueError(f"The zip uses a feature this app cannot unpack ({e}); zip it again with "
                         "ordinary (deflate) compression.") from e
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as e:
        raise ValueError("The zip holds a file and a folder with the same name "
                         f"({Path(e.filename or '?').name!r}); rename one of them.") from e
    except RuntimeError as e:  # zipfile's "password required" and the like
        raise ValueError(f"The zip cannot be unpacked ({e}).") from e
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise ValueError(f"The upload could not be unpacked into {uploads_root(root)}: {reason}.") from e


def _extract_zip(src, name, root, max_compressed, max_uncompressed, max_files) -> Upload:
    if isinstance(src, (str, os.PathLike)):
        size = Path(src).stat().st_size
    else:
        src.seek(0, io.SEEK_END)
        size = src.tell()
        src.seek(0)
    if size > max_compressed:
        raise ValueError(f"The zip is {size / 1024 ** 2:.0f} MB; at most {max_compressed / 1024 ** 2:.0f} MB "
                         "can be uploaded. Use a smaller subset, or point the Data folder field at the folder.")
    try:
        zf = zipfile.ZipFile(src)
    except zipfile.BadZipFile as e:
        raise ValueError(f"This is not a readable zip file ({e}).") from e
    with zf:
        todo: list[tuple[zipfile.ZipInfo, list[str]]] = []
        skipped = total = 0
        for info in zf.infolist():
            parts = _member_parts(info)
            if info.is_dir() or not parts:
                continue
            if _is_junk(parts) or not parts[-1].lower().endswith(IMAGE_EXTENSIONS):
                skipped += 1
                continue
            total += info.file_size
            todo.append((info, parts))
        if not todo:
            raise ValueError("The zip holds no image files. Expected one folder per class holding images, "
                             f"e.g. cat/001.png and dog/001.png ({', '.join(IMAGE_EXTENSIONS)}).")
        if len(todo) > max_files:
            raise ValueError(f"The zip holds {len(todo):,} images; at most {max_files:,} can be uploaded.")
        if total > max_uncompressed:
            raise ValueError(f"The zip's images take {total / 1024 ** 2:.0f} MB once extracted; at most "
                             f"{max_uncompressed / 1024 ** 2:.0f} MB can be uploaded.")

        base = uploads_root(root)
        base.mkdir(parents=True, exist_ok=True)
        tmp = base / f"{_TMP_PREFIX}{secrets.token_hex(4)}"
        tmp.mkdir()
        try:
            written = 0
            for info, parts in todo:
                target = tmp.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as fin, open(target, "wb") as fout:
                    # Count real bytes too: a forged header must not let more than the limit through.
                    while chunk := fin.read(1 << 20):
                        written += len(chunk)
                        if written > max_uncompressed:
                            raise ValueError(f"The zip's images exceed {max_uncompressed / 1024 ** 2:.0f} MB "
                                             "once extracted; refusing to go on.")
                        fout.write(chunk)
                _check_pixels(target, "/".join(parts))
            found = _image_folder_root(tmp)
            classes = _class_folders(found)
            if len(classes) < 2:
                raise ValueError("The zip needs one folder per class (at least two), each holding images, "
                                 "e.g. cat/001.png and dog/001.png; "
                                 f"found {len(classes)} class folder(s).")
            final = base / upload_name(name)
            n = 2
            while final.exists():
                final = base / f"{upload_name(name)}-{n}"
                n += 1
            os.replace(found, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return Upload(final.name, final, tuple(p.name for p in _class_folders(final)), len(todo), skipped)


def list_uploads(root: str | os.PathLike | None = None) -> list[Path]:
    """Uploaded image folders, newest first."""
    base = uploads_root(root)
    if not base.is_dir():
        return []
    found = [p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def delete_upload(name: str, root: str | os.PathLike | None = None) -> None:
    """Delete an uploaded image folder ``uploads_root(root)/<name>`` (and its decode cache files there).

    Only a folder directly inside the uploads folder can go; raises ValueError for anything else and
    FileNotFoundError when it does not exist. Runs trained on it keep their own files.
    """
    base = uploads_root(root)
    if not name or name != Path(name).name or name.startswith(".") or name in ("..", "."):
        raise ValueError(f"{name!r} is not an uploaded folder's name.")
    target = base / name
    if target.is_symlink() or not target.is_dir():
        raise FileNotFoundError(f"No uploaded folder {name!r} in {base}.")
    trash = base / f"{_TMP_PREFIX}del-{secrets.token_hex(4)}"
    os.replace(target, trash)
    shutil.rmtree(trash, ignore_errors=True)
