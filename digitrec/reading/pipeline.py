"""The two-stage photo reader: localize the number, crop it as the paper does, read it.

photo (any size) → localizer on the whole photo (resized to its square input) → box → more
looks: the localizer again on the region around the last box (`zoom` times its size), up to
`looks` times — a coarse-to-fine search over scales, which is what finds numbers that are a small
part of a large picture → candidate boxes (every look's, and the last one a little looser) →
each cropped with the paper's 30% margin, resized to
64 x 64, center 54 x 54 → the reader reads all candidates in one batch → the most confident
reading wins. Without a localizer the whole photo is read as one crop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from digitrec import decode
from digitrec.data.sequences import labels_to_string
from digitrec.data.svhn import crop_resize, expand_box


@dataclass
class Reading:
    number: str  # "" when the reader sees no digits
    confidence: float  # the reader's probability of that number
    box: list[float]  # the number's box in the photo's pixels: x0, y0, x1, y1

    def to_dict(self) -> dict:
        out = asdict(self)
        out["confidence"] = round(self.confidence, 4)
        out["box"] = [round(v, 1) for v in self.box]
        return out


def load_module(path: str | Path, map_location: str = "cpu"):
    """A DigitReader or BoxLocalizer from its Lightning checkpoint (weights_only: no pickle)."""
    from digitrec.module import BoxLocalizer, DigitReader

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=True)
    except Exception as e:
        raise ValueError(f"{path}: not a digitrec checkpoint ({type(e).__name__}: {e})") from None
    hparams = state.get("hyper_parameters", {}) if isinstance(state, dict) else {}
    cls = BoxLocalizer if "giou_weight" in hparams else DigitReader
    model = cls(**hparams)
    model.load_state_dict(state["state_dict"])
    return model.eval()


class PhotoReader:
    """Reads the number in photos of any size with a DigitReader and (optionally) a BoxLocalizer.

    `expand`, `image_size` and `crop` are the reader's training preprocessing (SVHN: 0.3, 64,
    54); `zoom` the size of each further look's region in units of the box before; `looks` how
    many looks at most (`refine=False`: one); `scales` the extra candidates made by scaling the
    last box about its center."""

    def __init__(self, reader, localizer=None, expand: float = 0.3, image_size: int = 64,
                 crop: int = 54, zoom: float = 3.0, refine: bool = True, looks: int = 3,
                 scales: tuple[float, ...] = (1.2,)):  # fmt: skip
        self.reader, self.localizer = reader.eval(), localizer.eval() if localizer else None
        self.expand, self.image_size, self.crop = expand, image_size, crop
        self.zoom, self.refine, self.looks, self.scales = zoom, refine, looks, scales
        shape = getattr(reader.net, "input_shape", (3, crop, crop))
        if tuple(shape) != (3, crop, crop):
            raise ValueError(f"reader input {tuple(shape)}: expected (3, {crop}, {crop}) RGB "
                             "crops (a reader trained with data=svhn)")  # fmt: skip
        self.loc_size = localizer.net.input_shape[-1] if localizer else None

    @classmethod
    def from_checkpoints(cls, reader: str | Path, localizer: str | Path | None = None, **kwargs):
        return cls(load_module(reader), load_module(localizer) if localizer else None, **kwargs)

    # ------------------------------------------------------------------------- stages
    @torch.inference_mode()
    def localize(self, image: np.ndarray, region: np.ndarray | None = None) -> np.ndarray:
        """The localizer's box (x0, y0, x1, y1, photo pixels) for the whole photo, or within
        `region` (x0, y0, x1, y1) of it."""
        x0, y0, x1, y1 = region if region is not None else (0, 0, image.shape[1], image.shape[0])
        patch = crop_resize(image, (x0, y0, x1, y1), self.loc_size)
        box = self.localizer(torch.from_numpy(patch).permute(2, 0, 1)[None])[0].numpy()
        return box * [x1 - x0, y1 - y0, x1 - x0, y1 - y0] + [x0, y0, x0, y0]

    def crops(self, image: np.ndarray, boxes: list[np.ndarray]) -> np.ndarray:
        """The reader's input for each box: + `expand` margin, image_size square, center crop."""
        h, w = image.shape[:2]
        o = (self.image_size - self.crop) // 2
        out = [crop_resize(image, expand_box(b, w, h, self.expand), self.image_size)
               [o : o + self.crop, o : o + self.crop] for b in boxes]  # fmt: skip
        return np.stack(out)

    @torch.inference_mode()
    def read_crops(self, crops: np.ndarray) -> list[tuple[str, float]]:
        """(number, confidence) for each (N, crop, crop, 3) uint8 crop."""
        x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2)
        d = decode.joint_decode(*self.reader(x))
        return [(labels_to_string(digits, n), float(c)) for digits, n, c in
                zip(d.digits.numpy(), d.length.numpy(), d.confidence.numpy(), strict=True)]  # fmt: skip

    def candidates(self, image: np.ndarray) -> list[np.ndarray]:
        """Boxes to read, the last look first: each look localizes within the previous box made
        `zoom` times larger, until `looks` looks or the region stops shrinking (the number
        already fills the localizer's view); then the last box scaled by `scales`."""
        h, w = image.shape[:2]
        if self.localizer is None:
            return [np.array([0, 0, w, h], np.float64)]
        boxes = [self.localize(image)]
        area = float(w * h)
        for _ in range(self.looks - 1 if self.refine else 0):
            region = expand_box(boxes[-1], w, h, self.zoom - 1)
            region_area = float((region[2] - region[0]) * (region[3] - region[1]))
            if region_area > 0.8 * area:
                break
            boxes.append(self.localize(image, region))
            area = region_area
        if len(boxes) == 1:
            return boxes
        last = boxes[-1]
        center, half = (last[:2] + last[2:]) / 2, (last[2:] - last[:2]) / 2
        scaled = [np.concatenate([center - half * s, center + half * s]) for s in self.scales]
        return boxes[::-1] + scaled

    def __call__(self, image: np.ndarray) -> Reading:
        """Read one RGB uint8 photo (H, W, 3)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} "
                             f"{image.shape}")  # fmt: skip
        boxes = self.candidates(image)
        readings = self.read_crops(self.crops(image, boxes))
        best = max(range(len(boxes)), key=lambda i: readings[i][1])
        h, w = image.shape[:2]
        box = np.clip(boxes[best], 0, [w, h, w, h])
        return Reading(readings[best][0], readings[best][1], [float(v) for v in box])
