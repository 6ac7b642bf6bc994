"""SVHN labels: digitStruct.mat, or the JSON form beside a folder of PNGs (split_records)."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import numpy as np

from digitrec.data.digitstruct import (
    FIELDS,
    Record,
    read_digit_struct,
)
from digitrec.data.svhn.download import (
    ensure_split,
)

log = logging.getLogger(__name__)


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
