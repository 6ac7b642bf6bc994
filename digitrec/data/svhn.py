"""SVHN format 1 (full house-number images with per-digit boxes): download, labels, preprocessing
and the HDF5 cache the training loader reads.

Layout under `root` (default `<data_dir>/svhn`): `<split>/1.png, 2.png, ...` and
`<split>/digitStruct.mat` for split in train, test, extra, exactly as the official archives
extract; `cache/<split>-<key>.h5` holds the preprocessed images (see `build_cache`; a read-only
root caches under ~/.cache/digitrec instead). A split folder with PNGs but no digitStruct.mat
takes its labels from the JSON form (`split_records`): `<split>/labels.json[.gz]`,
`<root>/labels/<split>.json[.gz]` or `<root>/../labels/<split>.json[.gz]` — so a subset of real
SVHN images (e.g. `$DIGITREC_DATA_DIR/svhn/real`, labels in `svhn/labels/`) works as a root.

`digitStruct.mat` (MATLAB v7.3) is read and written by `digitrec.data.digitstruct` (re-exported
here: `Record`, `read_digit_struct`, `write_digit_struct`), which checks every byte it trusts.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import tarfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from digitrec.data.digitstruct import (  # noqa: F401 (the format's names, re-exported)
    FIELDS,
    DigitStructError,
    Record,
    read_digit_struct,
    read_digit_struct_slow,
    write_digit_struct,
)
from digitrec.data.download import DownloadError, download_first, user_cache, writable

log = logging.getLogger(__name__)

SPLITS = ("train", "test", "extra")
# the official archives (http://ufldl.stanford.edu/housenumbers/): bytes and md5
ARCHIVES = {
    "train": ("train.tar.gz", 404_141_560, "a649f4cb15c35520e8a8c342d4c0005a"),
    "test": ("test.tar.gz", 276_555_967, "790d9c8d42f1fcbd219b59956c853a81"),
    "extra": ("extra.tar.gz", 1_955_489_752, "606f41243d71ca4d5fe66dbaf1f02bee"),
}
BASE_URLS = ("http://ufldl.stanford.edu/housenumbers/",)
RENDERED_MARKER = "RENDERED.md"  # present in roots written by digitrec.data.street


# --------------------------------------------------------------------------------- download
def ensure_split(root: str | Path, split: str, download: bool = True) -> Path:
    """`<root>/<split>/` with its digitStruct.mat; downloads and extracts the archive if needed."""
    if split not in SPLITS:
        raise ValueError(f"SVHN split {split!r}: expected one of {SPLITS}")
    root = Path(root)
    folder = root / split
    if (folder / "digitStruct.mat").is_file():
        return folder
    if not download:
        raise FileNotFoundError(
            f"{folder}/digitStruct.mat not found (download disabled: data.download=false)"
        )
    name, size, md5 = ARCHIVES[split]
    archive = root / name
    if not archive.is_file():
        log.info("downloading SVHN %s (%.0f MB) into %s", name, size / 1e6, root)
        got, failures = download_first([u + name for u in BASE_URLS], archive, md5=md5, size=size)
        if got is None:
            raise DownloadError(
                f"could not download SVHN {name} ({'; '.join(failures)}); "
                f"put the official {name} in {root} or extract it to {folder}"
            )
    extract(archive, root, split)
    return folder


def extract(archive: Path, root: Path, split: str) -> Path:
    """Extract `<split>/...` from the archive into a temporary folder, then rename it into place."""
    tmp = root / f".{split}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(tmp, filter="data")  # no absolute paths, links or devices
        if not (tmp / split / "digitStruct.mat").is_file():
            raise ValueError(f"{archive}: no {split}/digitStruct.mat inside")
        os.replace(tmp / split, root / split)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ValueError(
            f"{archive}: unreadable or truncated archive ({e}); delete it to download it again"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root / split


# --------------------------------------------------------------------------- label readers
def read_json_labels(path: str | Path) -> list[Record]:
    """The JSON label form (`[{"name", "width", "height", "boxes": [{label, left, ...}]}]`,
    optionally gzipped)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt") as f:
            entries = json.load(f)
        return [
            Record(
                e["name"],
                np.array([[b[k] for k in FIELDS] for b in e["boxes"]], np.float64).reshape(-1, 5),
                (int(e["width"]), int(e["height"])) if "width" in e else None,
            )
            for e in entries
        ]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not an SVHN label file ({type(e).__name__}: {e})") from None


def json_labels_for(root: str | Path, split: str) -> Path | None:
    """The JSON label file for a split folder without digitStruct.mat, if there is one."""
    root = Path(root)
    for folder, stem in (
        (root / split, "labels"),
        (root / "labels", split),
        (root.parent / "labels", split),
    ):
        for suffix in (".json.gz", ".json"):
            if (folder / f"{stem}{suffix}").is_file():
                return folder / f"{stem}{suffix}"
    return None


def split_records(root: str | Path, split: str, download: bool = True) -> tuple[Path, list[Record]]:
    """The split's folder and its records: from `<split>/digitStruct.mat`; else, for a folder of
    PNGs, from the JSON labels (`json_labels_for`), keeping the images present in the folder;
    else the official split, downloaded when missing."""
    root = Path(root)
    folder = root / split
    labels = None if (folder / "digitStruct.mat").is_file() else json_labels_for(root, split)
    if labels is not None and folder.is_dir():
        present = {p.name for p in folder.glob("*.png")}
        if present:
            records = [r for r in read_json_labels(labels) if r.name in present]
            if not records:
                raise ValueError(
                    f"{folder}: none of its {len(present)} PNGs is labelled in {labels}"
                )
            unlabelled = len(present) - len(records)
            if unlabelled:
                log.warning(
                    "%s: %d PNGs have no entry in %s and are skipped", folder, unlabelled, labels
                )
            log.info("%s: %d images labelled by %s", folder, len(records), labels)
            return folder, records
    folder = ensure_split(root, split, download)
    return folder, read_digit_struct(folder / "digitStruct.mat")


# --------------------------------------------------------------------------- preprocessing
@dataclass(frozen=True)
class Preprocessing:
    """The paper's crop: the union of the digit boxes, enlarged by `expand` in x and y (about its
    center, clipped to the image), resized to `size` x `size`. Numbers longer than `max_len`:
    `long_numbers="class"` keeps them with the length class max_len + 1 (">max_len", the paper's
    seventh length class) and their first max_len digits; "drop" leaves them out."""

    size: int = 64
    expand: float = 0.3
    max_len: int = 5
    long_numbers: str = "class"
    whole_image: bool = False  # True: the whole image resized to size x size (the localizer's)
    version: int = 1  # bump when the conversion code changes what it writes

    def __post_init__(self):
        if self.long_numbers not in ("class", "drop"):
            raise ValueError(f"data.long_numbers={self.long_numbers!r}: expected 'class' or 'drop'")
        if self.size < 8 or self.expand < 0:
            raise ValueError(
                f"data.image_size={self.size}, data.expand={self.expand}: "
                "expected a size >= 8 and a non-negative expansion"
            )

    @property
    def key(self) -> str:
        fields = asdict(self)
        if not self.whole_image:  # keeps the keys of caches written before the field existed
            del fields["whole_image"]
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def union_box(boxes: np.ndarray) -> np.ndarray:
    """x0, y0, x1, y1 (x1, y1 exclusive) of the union of (n, 5) digit boxes."""
    left, top = boxes[:, 1], boxes[:, 2]
    return np.array([left.min(), top.min(), (left + boxes[:, 3]).max(), (top + boxes[:, 4]).max()])


def crop_box(boxes: np.ndarray, width: int, height: int, expand: float) -> np.ndarray:
    """The union box of (n, 5) digit boxes enlarged by `expand` (see `expand_box`)."""
    return expand_box(union_box(boxes), width, height, expand)


def expand_box(box: Sequence[float], width: int, height: int, expand: float) -> np.ndarray:
    """A box x0, y0, x1, y1 enlarged by `expand` about its center, clipped to the image, whole
    pixels (x0, y0 rounded down, x1, y1 rounded up), at least one pixel wide and high."""
    x0, y0, x1, y1 = box
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * (1 + expand), (y1 - y0) * (1 + expand)
    out = np.array(
        [np.floor(cx - w / 2), np.floor(cy - h / 2), np.ceil(cx + w / 2), np.ceil(cy + h / 2)]
    )
    out = np.clip(out, 0, [width, height, width, height])
    out[2] = max(out[2], min(out[0] + 1, width))
    out[3] = max(out[3], min(out[1] + 1, height))
    out[:2] = np.minimum(out[:2], out[2:] - 1)
    return out.astype(np.int64)


def preprocess(image: np.ndarray, record: Record, p: Preprocessing):
    """(size x size x 3 uint8 crop, crop box in the image, union box in crop pixels). With
    `p.whole_image` the crop is the whole image (squashed to a square)."""
    h, w = image.shape[:2]
    box = np.array([0, 0, w, h]) if p.whole_image else crop_box(record.boxes, w, h, p.expand)
    x0, y0, x1, y1 = box
    out = crop_resize(image, box, p.size)
    sx, sy = p.size / (x1 - x0), p.size / (y1 - y0)
    u = union_box(record.boxes)
    inner = np.clip(
        [(u[0] - x0) * sx, (u[1] - y0) * sy, (u[2] - x0) * sx, (u[3] - y0) * sy], 0, p.size
    )
    return out, box, inner.astype(np.float32)


def crop_resize(image: np.ndarray, box: Sequence[int], size: int) -> np.ndarray:
    """image[y0:y1, x0:x1] resized to size x size (area averaging when shrinking; a large patch
    loses at most k - 1 pixels of its right and bottom edges to the block average)."""
    import cv2

    x0, y0, x1, y1 = (int(v) for v in box)
    patch = image[y0:y1, x0:x1]
    k = min(patch.shape[:2]) // (2 * size)
    if k >= 2:  # first an exact k x k block average (OpenCV's fast integer path: a 12 MP photo
        # to 128 px in 10 ms instead of 48), then area averaging the rest of the way
        h, w = patch.shape[0] // k, patch.shape[1] // k
        patch = cv2.resize(patch[: h * k, : w * k], (w, h), interpolation=cv2.INTER_AREA)
    shrink = patch.shape[0] > size or patch.shape[1] > size
    return cv2.resize(
        patch, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )


def encode_labels(boxes: np.ndarray, max_len: int) -> tuple[int, np.ndarray]:
    """(length class, digits (max_len,) with -1 past the length); label 10 → 0."""
    digits = np.full(max_len, -1, np.int64)
    n = len(boxes)
    d = boxes[:max_len, 0].astype(np.int64) % 10
    digits[: len(d)] = d
    return min(n, max_len + 1), digits


# -------------------------------------------------------------------------------- the cache
CACHE_ARRAYS = ("images", "length", "digits", "box", "crop", "size")


def cache_dir(root: str | Path) -> Path:
    """Where a root's caches go: `<root>/cache`, or, when the root cannot be written (a shared,
    read-only copy), `$XDG_CACHE_HOME/digitrec/svhn-<name>-<hash of the root's path>`."""
    root = Path(root)
    if writable(root):
        return root / "cache"
    tag = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    return user_cache(f"svhn-{root.name}-{tag}")


def cache_path(root: Path, split: str, p: Preprocessing) -> Path:
    return cache_dir(root) / f"{split}-{p.key}.h5"


def build_cache(
    root: str | Path,
    split: str,
    p: Preprocessing,
    download: bool = True,
    workers: int = 2,
    progress: bool = True,
) -> Path:
    """Convert `<root>/<split>` (PNGs + labels, `split_records`) into `cache/<split>-<key>.h5`, where key
    hashes the preprocessing config: images uint8 (N, size, size, 3), length (N,), digits
    (N, max_len), box (N, 4) union box in crop pixels, crop (N, 4) crop box in the image,
    size (N, 2) the image's width, height, names (N,). Written to a temporary file and renamed
    when complete, so a reader never sees half a cache; an existing cache is reused."""
    root = Path(root)
    out = cache_path(root, split, p)
    if out.is_file():
        return out
    start = time.perf_counter()
    folder, records = split_records(root, split, download)
    log.info("%s: %d records in %.1f s", folder, len(records), time.perf_counter() - start)
    empty = [r.name for r in records if len(r.boxes) == 0]
    long = [r for r in records if len(r.boxes) > p.max_len]
    keep = [
        r
        for r in records
        if len(r.boxes) and (p.long_numbers == "class" or len(r.boxes) <= p.max_len)
    ]
    if long:
        log.info(
            "%s: %d numbers longer than %d digits %s",
            split,
            len(long),
            p.max_len,
            f"kept as the length class '>{p.max_len}'"
            if p.long_numbers == "class"
            else "dropped (data.long_numbers=drop)",
        )
    if empty:
        log.info("%s: %d images without boxes skipped", split, len(empty))
    n = len(keep)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            images = f.create_dataset(
                "images", (n, p.size, p.size, 3), np.uint8, chunks=(min(n, 256), p.size, p.size, 3)
            )
            length = np.zeros(n, np.int64)
            digits = np.zeros((n, p.max_len), np.int64)
            box, crop, size = (
                np.zeros((n, 4), np.float32),
                np.zeros((n, 4), np.int32),
                np.zeros((n, 2), np.int32),
            )

            def one(i: int):
                r = keep[i]
                image = _read_image(folder / r.name)
                return i, *preprocess(image, r, p), image.shape

            block = 1024
            with ThreadPoolExecutor(max(1, workers)) as pool, _progress(n, split, progress) as bar:
                for s in range(0, n, block):
                    chunk = np.zeros((min(block, n - s), p.size, p.size, 3), np.uint8)
                    for i, img, cb, ub, shape in pool.map(one, range(s, s + len(chunk))):
                        chunk[i - s] = img
                        crop[i], box[i], size[i] = cb, ub, (shape[1], shape[0])
                        length[i], digits[i] = encode_labels(keep[i].boxes, p.max_len)
                    images[s : s + len(chunk)] = chunk
                    bar.update(len(chunk))
            for k, v in (
                ("length", length),
                ("digits", digits),
                ("box", box),
                ("crop", crop),
                ("size", size),
            ):
                f.create_dataset(k, data=v)
            f.create_dataset("names", data=np.array([r.name for r in keep], dtype="S"))
            f.attrs["preprocessing"] = json.dumps(asdict(p), sort_keys=True)
            f.attrs["source"] = str(folder.resolve())
            f.attrs["rendered"] = (root / RENDERED_MARKER).is_file()
            f.attrs["complete"] = True  # written last: a cache without it is not read
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info(
        "%s: cached %d images as %dx%d in %.0f s → %s",
        split,
        n,
        p.size,
        p.size,
        time.perf_counter() - start,
        out,
    )
    return out


def load_cache(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of a cache file, in memory (a few hundred MB for train + test)."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if not f.attrs.get("complete", False):
                raise ValueError(f"{path}: incomplete cache (no 'complete' mark); delete it")
            out = {k: f[k][()] for k in CACHE_ARRAYS}
            out["names"] = f["names"][()].astype(str)
            out["rendered"] = bool(f.attrs.get("rendered", False))
            return out
    except (OSError, KeyError) as e:
        raise ValueError(f"{path}: unreadable SVHN cache ({e}); delete it to rebuild") from None


def _read_image(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: missing or not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"caching {desc}", unit="img", disable=not enabled)
