"""The detector's photo reader: every digit in the photo found and classified at full resolution,
digits grouped into candidate numbers (rows and vertical stacks), the best candidate the answer.

photo (any size) → scaled to fit each of `sizes` (the checkpoint's own size by default) on its
long side, never enlarged, padded to multiples of 32 (the network is fully convolutional: a wide
photo stays wide) → the digit CenterNet → digits (threshold) → back to the photo's pixels; several sizes: their digits
merged (a digit found at two sizes kept once) → each digit cut from the photo at full resolution
and read again by the digit classifier (0-9, or "no digit": dropped) → candidates
(digitrec.models.grouping) → the best
candidate scoring at least `answer_threshold` is the number; below it, no answer (number "").
A reading lists every candidate, each with its box, digit boxes, orientation and score.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from digitrec.inference.pipeline import Reading
from digitrec.models.detector import decode, suppress
from digitrec.models.fuse import fuse_conv_bn
from digitrec.models.grouping import Candidate, group
from digitrec.tasks.detector import reread


def fit(image: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """`image` scaled so its long side is at most `size` (never enlarged), on black padded to
    multiples of 32 at the right and bottom: (canvas, scale); a point (x, y) of the image is
    (x * scale, y * scale) on the canvas."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, size / max(h, w))
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if scale < 1:
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((-(-nh // 32) * 32, -(-nw // 32) * 32, 3), np.uint8)
    canvas[:nh, :nw] = image
    return canvas, scale


def _candidate_dict(c: Candidate) -> dict:
    return {
        "number": c.number,
        "score": round(c.score, 4),
        "box": [round(v, 1) for v in c.box],
        "orientation": c.orientation,
        "digits": [[round(float(v), 1) for v in d[:4]] for d in c.digits],
    }


class DetectorReader:
    """Reads the number in photos of any size with a NumberDetector (see the module docstring).
    Same interface as the two-stage PhotoReader: `reader(image) -> Reading`."""

    fallback = 0.0  # no tile search: the detector sees the whole photo

    def __init__(
        self,
        detector,
        sizes: Sequence[int] | None = None,
        threshold: float | None = None,
        answer_threshold: float | None = None,
        overlap: float | None = None,
    ):
        self.net = fuse_conv_bn(detector.net)
        self.classifier = fuse_conv_bn(detector.classifier) if detector.classifier else None
        recipe = getattr(detector, "preprocessing", None) or detector.default_preprocessing()
        if recipe.get("kind") != "letterbox":
            raise ValueError(f"a detector of {recipe.get('kind')!r} inputs: expected letterbox")
        self.sizes = tuple(sizes or (int(recipe["size"]),))
        for s in self.sizes:
            if s % 32 or s < 32:
                raise ValueError(f"size {s}: expected a multiple of 32, at least 32")
        hp = detector.hparams
        self.crop_size, self.crop_expand = hp.get("crop_size", 0), hp.get("crop_expand", 0.15)
        self.threshold = float(hp.get("threshold", 0.3) if threshold is None else threshold)
        self.answer_threshold = float(
            hp.get("answer_threshold", 0.5) if answer_threshold is None else answer_threshold
        )
        self.overlap = float(hp.get("overlap", 0.5) if overlap is None else overlap)

    @torch.inference_mode()
    def digits(self, image: np.ndarray) -> np.ndarray:
        """Every digit found (n, 7): x0, y0, x1, y1 in the photo's pixels, score, class, heat."""
        found = []
        for size in self.sizes:
            canvas, scale = fit(image, size)
            x = torch.from_numpy(canvas).permute(2, 0, 1)[None].float() / 255
            d = decode(self.net(x), self.threshold)[0]
            d[:, :4] = d[:, :4] / scale
            found.append(d)
        merged = torch.cat(found)
        merged = merged[torch.argsort(merged[:, 4], descending=True)]
        merged = suppress(merged) if len(self.sizes) > 1 else merged
        found = reread(self.classifier, merged, image, self.crop_size, self.crop_expand)
        return suppress(found, self.overlap).numpy()  # one digit found twice: the better kept

    def candidates(self, image: np.ndarray) -> list[Candidate]:
        return group(self.digits(image))

    def __call__(self, image: np.ndarray) -> Reading:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}"
            )
        h, w = image.shape[:2]
        candidates = self.candidates(image)
        listed = [_candidate_dict(c) for c in candidates]
        best = candidates[0] if candidates else None
        if best is None or best.score < self.answer_threshold:
            confidence = best.score if best else 0.0
            return Reading("", confidence, [0.0, 0.0, float(w), float(h)], listed)
        box = np.clip(np.array(best.box), 0, [w, h, w, h])
        return Reading(best.number, best.score, [float(v) for v in box], listed)
