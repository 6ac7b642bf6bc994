"""Real street photos with number boxes: `curtin_numbers/` (../shared/data; CC BY 4.0).

Each split folder holds JPEGs and `labels.json`: one entry per photo, `{"file", "width",
"height", "numbers": [{"number", "confident", "has_letter", "box": [left, top, width, height]}],
"source", "md5"}` (a photo without a number has none: a negative). `read_split` checks every entry
and returns `Photo`s whose boxes are (x0, y0, x1, y1) in the photo's pixels. The detector's real
training data (`train/`) and its measure (`test/`: never trained or tuned on).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LABELS = "labels.json"


@dataclass(frozen=True)
class NumberBox:
    number: str  # as read ("" when unreadable); may hold a letter (has_letter)
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in the photo's pixels
    confident: bool  # read with certainty: only these are a measure
    has_letter: bool  # e.g. 502A: not a number of digits only


@dataclass(frozen=True)
class Photo:
    path: Path
    width: int
    height: int
    numbers: tuple[NumberBox, ...]  # empty: a photo without a number (a negative)


class LabelError(ValueError):
    """A labels.json that is not the documented form: one line naming the file, entry and key."""


def _number(where: str, raw, width: int, height: int) -> NumberBox:
    if not isinstance(raw, dict):
        raise LabelError(f"{where}: expected an object with number, confident, has_letter, box")
    box = raw.get("box")
    ok = (
        isinstance(box, list)
        and len(box) == 4
        and all(isinstance(v, int | float) and math.isfinite(v) for v in box)
    )
    if not ok or box[2] <= 0 or box[3] <= 0:
        raise LabelError(f"{where}.box={box!r}: expected [left, top, width, height], sizes > 0")
    x0, y0, x1, y1 = box[0], box[1], box[0] + box[2], box[1] + box[3]
    if x0 < -1 or y0 < -1 or x1 > width + 1 or y1 > height + 1:
        raise LabelError(f"{where}.box={box!r}: outside the {width}x{height} photo")
    number = raw.get("number")
    if not isinstance(number, str):
        raise LabelError(f"{where}.number={number!r}: expected a string")
    return NumberBox(
        number,
        (float(max(x0, 0)), float(max(y0, 0)), float(min(x1, width)), float(min(y1, height))),
        bool(raw.get("confident", False)),
        bool(raw.get("has_letter", False)),
    )


def read_split(folder: str | Path) -> list[Photo]:
    """The photos of a split folder (`<folder>/labels.json`), in the file's order; LabelError (one
    line) for an entry that is not the documented form, FileNotFoundError for a missing file."""
    folder = Path(folder)
    path = folder / LABELS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected the split's labels.json)")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LabelError(f"{path}: not readable JSON ({' '.join(str(e).split())})") from None
    if not isinstance(entries, list):
        raise LabelError(f"{path}: expected a list of photo entries")
    photos, seen = [], set()
    for i, entry in enumerate(entries):
        where = f"{path}[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise LabelError(f"{where}: expected an object with a file name")
        name = entry["file"]
        if Path(name).name != name or name in seen:
            raise LabelError(f"{where}.file={name!r}: expected a plain, unique file name")
        seen.add(name)
        width, height = entry.get("width"), entry.get("height")
        if not all(isinstance(v, int) and v > 0 for v in (width, height)):
            raise LabelError(f"{where}: width={width!r}, height={height!r}: expected pixels > 0")
        numbers = entry.get("numbers", [])
        if not isinstance(numbers, list):
            raise LabelError(f"{where}.numbers: expected a list")
        boxes = tuple(
            _number(f"{where}.numbers[{k}]", raw, width, height) for k, raw in enumerate(numbers)
        )
        photos.append(Photo(folder / name, width, height, boxes))
    return photos


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """An RGB image scaled to fit `size` x `size` (aspect kept) on black: (square, scale,
    (dx, dy)); a point (x, y) of the image is (x * scale + dx, y * scale + dy) on the square."""
    import cv2

    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interpolation)
    out = np.zeros((size, size, 3), np.uint8)
    dy, dx = (size - nh) // 2, (size - nw) // 2
    out[dy : dy + nh, dx : dx + nw] = resized
    return out, scale, (dx, dy)


def load_photos(photos: list[Photo], size: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The photos letterboxed to `size` (N, size, size, 3) uint8, and each one's number boxes
    (n, 4) float32 moved with it. A photo that does not decode is a one-line error naming it."""
    import cv2

    images = np.zeros((len(photos), size, size, 3), np.uint8)
    boxes = []
    for i, p in enumerate(photos):
        bgr = cv2.imread(str(p.path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{p.path}: not a readable image")
        images[i], scale, (dx, dy) = letterbox(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size)
        b = np.array([n.box for n in p.numbers], np.float32).reshape(-1, 4)
        boxes.append(b * scale + np.array([dx, dy, dx, dy], np.float32))
    return images, boxes
