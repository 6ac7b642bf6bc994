"""SVHN format 1 downloaded: the official archives, checked and extracted into <root>/<split>/."""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import uuid
from pathlib import Path

from digitrec.data.download import DownloadError, download_first

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
