"""Chars74K natural-scene digits (`../shared/data/chars74k_digits`: one real digit per image, cut
tightly from a street photo at its native size; `labels.csv`: file,digit,quality,...).

The detector's digit classifier trains on them as real crops beside the ones cut from training
views: each digit is padded by more than the classifier's margin (edge pixels repeated), so that
`photo_augment.crop_samples` cuts it, box jittered, with the same framing as any other digit.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from digitrec.data.photo_scenes import Labelled

MAX_SIDE = 1024  # a Chars74K digit is at most a few hundred pixels; anything larger is refused


def chars74k_digits(root: str | Path, pad: float = 0.3) -> list[Labelled]:
    """Every digit of `root`/labels.csv as a Labelled RGB image padded by `pad` of its size each
    way, with one digit box (the original image). Raises ValueError naming the file and line for
    a bad row."""
    import cv2

    root = Path(root)
    table = root / "labels.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table}: no such file (expected chars74k_digits/labels.csv)")
    base = root.resolve()
    items = []
    with open(table, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            where = f"{table}, line {line}"
            digit, name = (row.get("digit") or "").strip(), (row.get("file") or "").strip()
            if not digit.isdigit() or len(digit) != 1:
                raise ValueError(f"{where}: digit {digit!r}, expected one of 0-9")
            path = (root / name).resolve()
            if not name or not path.is_relative_to(base):
                raise ValueError(f"{where}: file {name!r}, expected a path inside {root}")
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"{where}: {path} is not a readable image")
            h, w = bgr.shape[:2]
            if max(h, w) > MAX_SIDE:
                raise ValueError(f"{where}: {path} is {w}x{h}, expected at most {MAX_SIDE} px")
            px, py = int(np.ceil(pad * w)) + 1, int(np.ceil(pad * h)) + 1
            padded = cv2.copyMakeBorder(bgr, py, py, px, px, cv2.BORDER_REPLICATE)
            box = np.array([[int(digit), px, py, px + w, py + h]], np.float32)
            items.append(Labelled(np.ascontiguousarray(padded[:, :, ::-1]), box, ()))
    if not items:
        raise ValueError(f"{table}: no digits listed")
    return items
