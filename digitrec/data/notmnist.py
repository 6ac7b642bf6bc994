"""notMNIST: 28x28 glyphs of the letters A-J in many fonts (labels 0-9 = A-J), the seed notebooks'
alternative to MNIST, for `data=notmnist_seq`.

`load_notmnist(root)` looks in `<root>/notmnist/` for, in order:
1. `notMNIST_small.npz`: the arrays converted from the archive (written once, atomically);
2. `notMNIST_small/` (extracted folders A..J of PNGs) or `notMNIST_small.tar.gz`: converted into
   (1); unreadable PNGs (the archive has a few) are skipped and counted in the log;
3. `t10k-images-idx3-ubyte.gz` + `t10k-labels-idx1-ubyte.gz`: a sample in MNIST's idx format
   (`../shared/data/notmnist`: 10,000 letters), md5-checked;
4. else it downloads `notMNIST_small.tar.gz` (resumable, size-checked) and goes to (2).
notMNIST has no official split: a fixed permutation (seed 0) holds out `test_fraction` as test.
"""

from __future__ import annotations

import io
import logging
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from digitrec.data.download import DownloadError, download_first
from digitrec.data.mnist import IdxFile, read_idx, verify_idx
from digitrec.io import atomic_write_bytes

log = logging.getLogger(__name__)

ARCHIVE = "notMNIST_small.tar.gz"
# the dataset's home (Yaroslav Bulatov, 2011); no md5 is published, the size is the Udacity
# course's check
ARCHIVE_URLS = ("http://yaroslavvb.com/upload/notMNIST/notMNIST_small.tar.gz",)
ARCHIVE_SIZE = 8_458_043
CACHE = "notMNIST_small.npz"
LETTERS = "ABCDEFGHIJ"
SAMPLE_FILES = {
    "images": IdxFile(
        "t10k-images-idx3-ubyte",
        "2c87c839a4ef9b238846600eec8c35b7",
        "1e78b07d677d6e4de2c8857bafff012e",
    ),
    "labels": IdxFile(
        "t10k-labels-idx1-ubyte",
        "7ea9118cbafd0f6e3ee2ad771d782a01",
        "b10b3ef34b4e468313a7b24c216c6a53",
    ),
}


def _decode_png(data: bytes) -> np.ndarray | None:
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE) if data else None
    return image if image is not None and image.shape == (28, 28) else None


def _letter(name: str) -> int | None:
    """The label of an archive member `notMNIST_small/C/xyz.png` (None for anything else)."""
    parts = name.replace("\\", "/").split("/")
    if len(parts) >= 2 and parts[-2] in LETTERS and parts[-1].lower().endswith(".png"):
        return LETTERS.index(parts[-2])
    return None


def _members_from_tar(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if member.isfile() and _letter(member.name) is not None:
                    f = tar.extractfile(member)
                    yield member.name, f.read() if f else b""
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ValueError(
            f"{path}: unreadable or truncated archive ({e}); delete it to download it again"
        ) from None


def _members_from_dir(path: Path) -> Iterator[tuple[str, bytes]]:
    for png in sorted(path.glob(f"[{LETTERS}]/*.png")):
        yield str(png.relative_to(path.parent)), png.read_bytes()


def convert(members: Iterator[tuple[str, bytes]], source: Path) -> dict[str, np.ndarray]:
    """PNG members → images (N, 28, 28) uint8 and labels (N,) uint8, unreadable ones skipped."""
    images, labels, skipped = [], [], []
    for name, data in members:
        image = _decode_png(data)
        if image is None:
            skipped.append(name)
            continue
        images.append(image)
        labels.append(_letter(name))
    if not images:
        raise ValueError(
            f"{source}: no readable notMNIST PNGs (expected folders A..J of 28x28 PNGs)"
        )
    log.info(
        "notMNIST: %d letters read from %s, %d unreadable files skipped%s",
        len(images),
        source,
        len(skipped),
        f" ({', '.join(skipped[:3])}{', ...' if len(skipped) > 3 else ''})" if skipped else "",
    )
    return {"images": np.stack(images), "labels": np.asarray(labels, np.uint8)}


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("images", "labels")}
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"{path}: unreadable notMNIST cache ({e}); delete it to rebuild") from None
    if arrays["images"].shape[1:] != (28, 28) or len(arrays["images"]) != len(arrays["labels"]):
        raise ValueError(f"{path}: expected images (N, 28, 28) and N labels; delete it to rebuild")
    return _checked(arrays, path)


def _checked(arrays: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """`arrays`, once their labels are 0-9 (A-J) and images and labels are as many; checked
    whatever data.verify says: your own files get the same one line."""
    labels = arrays["labels"]
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        bad = int(labels.max() if labels.max() > 9 else labels.min())
        raise ValueError(f"{path}: a label of {bad}; notMNIST labels are 0-9 (the letters A-J)")
    if len(arrays["images"]) != len(labels):
        raise ValueError(
            f"{path}: {len(arrays['images'])} images but {len(labels)} labels; expected as many"
        )
    return arrays


def ensure_notmnist(
    data_dir: str | Path,
    download: bool = True,
    verify: bool = True,
    progress: bool = True,
    timeout: float | None = None,
) -> dict[str, np.ndarray]:
    """All notMNIST letters found (or fetched) under `<data_dir>/notmnist`: images and labels.
    `timeout` bounds each network connect and read (default $DIGITREC_NET_TIMEOUT, else 20 s)."""
    directory = Path(data_dir).expanduser() / "notmnist"
    cache, archive, folder = directory / CACHE, directory / ARCHIVE, directory / "notMNIST_small"
    if cache.exists():
        return _load_npz(cache)
    if folder.is_dir() or archive.exists():
        source = folder if folder.is_dir() else archive
        members = _members_from_dir(folder) if folder.is_dir() else _members_from_tar(archive)
        arrays = convert(members, source)
        _save_npz(cache, arrays)
        return arrays
    sample = {k: directory / f"{s.name}.gz" for k, s in SAMPLE_FILES.items()}
    if all(p.exists() for p in sample.values()):
        if verify:
            for key, spec in SAMPLE_FILES.items():
                verify_idx(sample[key], spec)
        return _checked({k: read_idx(p) for k, p in sample.items()}, sample["labels"])
    if not download:
        raise FileNotFoundError(
            f"{directory}: no notMNIST ({ARCHIVE}, notMNIST_small/ or the idx sample) and "
            "download is disabled"
        )
    log.info("notMNIST not found in %s: downloading %s", directory, ARCHIVE)
    path, failures = download_first(
        ARCHIVE_URLS, archive, size=ARCHIVE_SIZE, progress=progress, timeout=timeout
    )
    if path is None:
        raise DownloadError(
            f"notMNIST is not in {directory} and could not be fetched; tried: "
            + "; ".join(failures)
            + f". Put {ARCHIVE} (or the extracted notMNIST_small/) there."
        )
    return ensure_notmnist(data_dir, download=False, verify=verify)


def split(arrays: dict[str, np.ndarray], test_fraction: float = 0.2, seed: int = 0):
    """A fixed train/test split of all letters, as MNIST's four arrays."""
    n = len(arrays["images"])
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return {
        "train_images": arrays["images"][train],
        "train_labels": arrays["labels"][train],
        "test_images": arrays["images"][test],
        "test_labels": arrays["labels"][test],
    }


def load_notmnist(
    data_dir: str | Path, test_fraction: float = 0.2, **kwargs
) -> dict[str, np.ndarray]:
    """notMNIST as MNIST's four arrays (train/test images uint8 N×28×28, labels 0-9 = A-J)."""
    return split(ensure_notmnist(data_dir, **kwargs), test_fraction)
