"""The HDF5 cache of a preprocessed split: built once (temporary file, then rename), read whole."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import h5py
import numpy as np

from digitrec.data.download import user_cache, writable
from digitrec.data.svhn.crops import (
    Preprocessing,
    encode_labels,
    preprocess,
)
from digitrec.data.svhn.download import (
    RENDERED_MARKER,
)
from digitrec.data.svhn.labels import split_records
from digitrec.io import atomic_path

log = logging.getLogger(__name__)


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
    with atomic_path(out) as tmp:
        _write_cache(tmp, root, folder, keep, p, split, workers, progress)
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


def _write_cache(
    tmp: Path,
    root: Path,
    folder: Path,
    keep: list,
    p: Preprocessing,
    split: str,
    workers: int,
    progress: bool,
) -> None:
    """The cache's HDF5 file: every kept image preprocessed (in `workers` threads), its labels
    and boxes, and the attributes that say how it was made; `complete` written last."""
    n = len(keep)
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
