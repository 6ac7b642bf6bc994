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


def _content(image: np.ndarray) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1) inside black letterbox bars (the whole image when there are none)."""
    lit = image.max(2) > 12
    rows, cols = np.flatnonzero(lit.any(1)), np.flatnonzero(lit.any(0))
    if len(rows) == 0:
        return 0, 0, image.shape[1], image.shape[0]
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def labelled(photo: Photo, max_side: int = 1024):
    """A photo as a `Labelled` training item: decoded to RGB, its letterbox bars cut off, scaled to
    at most `max_side` on its long side; its numbers split into digit boxes (`split_number`:
    letters and numbers not read with confidence are class -1, ignored)."""
    import cv2

    from digitrec.data.photo_scenes import Labelled, split_number

    bgr = cv2.imread(str(photo.path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{photo.path}: not a readable image")
    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    x0, y0, x1, y1 = _content(image)
    image = image[y0:y1, x0:x1]
    scale = min(1.0, max_side / max(image.shape[:2]))
    if scale < 1:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    shift = np.array([x0, y0, x0, y0], np.float32)
    digits, numbers = [np.zeros((0, 5), np.float32)], []
    for n in photo.numbers:
        box = tuple(float(v) for v in (np.array(n.box, np.float32) - shift) * scale)
        d = split_number(n.number, box)
        if not n.confident:
            d[:, 0] = -1
        if len(d) == 0:  # unreadable: the whole box ignored
            d = np.array([[-1, *box]], np.float32)
        digits.append(d)
        numbers.append((n.number, box))
    return Labelled(np.ascontiguousarray(image), np.concatenate(digits), tuple(numbers))


def svhn_labelled(root: str | Path, split: str) -> list:
    """Real SVHN format-1 images as `Labelled` items with their true digit boxes."""
    import cv2

    from digitrec.data import svhn
    from digitrec.data.photo_scenes import Labelled

    folder, records = svhn.split_records(root, split, download=False)
    out = []
    for r in records:
        bgr = cv2.imread(str(folder / r.name), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{folder / r.name}: not a readable image")
        b = r.boxes
        digits = np.c_[b[:, 0] % 10, b[:, 1], b[:, 2], b[:, 1] + b[:, 3], b[:, 2] + b[:, 4]]
        number = "".join(str(int(v) % 10) for v in b[:, 0])
        box = tuple(float(v) for v in svhn.union_box(b))
        out.append(
            Labelled(
                np.ascontiguousarray(bgr[..., ::-1]),
                digits.astype(np.float32),
                ((number, box),) if len(b) else (),
            )
        )
    return out
