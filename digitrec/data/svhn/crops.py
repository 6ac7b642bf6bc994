"""The paper's preprocessing: the union of the digit boxes, enlarged, cropped and resized."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from digitrec.data.digitstruct import (
    Record,
)


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
