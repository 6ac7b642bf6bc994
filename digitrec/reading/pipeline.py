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
from digitrec.models.fuse import fuse_conv_bn


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


def cli_parser(prog: str, doc: str | None, localizer_required: bool = False):
    """The start every reading command shares: the reader's checkpoint and --localizer."""
    import argparse

    p = argparse.ArgumentParser(prog=prog, description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("checkpoint", help="the reader's checkpoint (a data=svhn run's best.ckpt)")
    p.add_argument("--localizer", default=None, required=localizer_required,
                   help="the localizer's checkpoint (experiment=localizer)")  # fmt: skip
    return p


def add_fallback_argument(p) -> None:
    p.add_argument("--fallback", type=float, default=0.0,
                   help="below this confidence, search again from four tiles of the photo "
                        "(default 0: off)")  # fmt: skip


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
    many looks at most (1: the whole photo only); `scales` the extra candidates made by scaling the
    last box about its center; below a confidence of `fallback` the search starts again from
    four overlapping tiles of `tile` x the photo's size (positions as well as scales)."""

    def __init__(self, reader, localizer=None, expand: float = 0.3, image_size: int = 64,
                 crop: int = 54, zoom: float = 3.0, looks: int = 3,
                 scales: tuple[float, ...] = (1.2,), fallback: float = 0.0,
                 tile: float = 0.6):  # fmt: skip
        # batch norms folded into their convolutions: same outputs to float rounding, faster
        self.reader = fuse_conv_bn(reader)
        self.localizer = fuse_conv_bn(localizer) if localizer is not None else None
        self.expand, self.image_size, self.crop = expand, image_size, crop
        if looks < 1:
            raise ValueError(f"looks={looks}: expected at least 1")
        self.zoom, self.looks, self.scales = zoom, looks, scales
        self.fallback, self.tile = fallback, tile
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
    def localize(self, image: np.ndarray, regions: list[np.ndarray]) -> list[np.ndarray]:
        """The localizer's box (x0, y0, x1, y1, photo pixels) within each region of the photo,
        all regions in one batch."""
        patches = np.stack([crop_resize(image, r, self.loc_size) for r in regions])
        boxes = self.localizer(torch.from_numpy(patches).permute(0, 3, 1, 2)).numpy()
        out = []
        for b, (x0, y0, x1, y1) in zip(boxes.astype(np.float64), regions, strict=True):
            out.append(b * [x1 - x0, y1 - y0, x1 - x0, y1 - y0] + [x0, y0, x0, y0])
        return out

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

    def search(self, image: np.ndarray, regions: list[np.ndarray]) -> list[np.ndarray]:
        """Coarse to fine from each starting region: each look localizes within the previous
        box made `zoom` times larger, until `looks` looks or the region stops shrinking (the
        number already fills the localizer's view). Returns the boxes to read: each chain's
        looks, the last first, then its last box scaled by `scales`."""
        h, w = image.shape[:2]
        chains = [[b] for b in self.localize(image, regions)]
        areas = [float((r[2] - r[0]) * (r[3] - r[1])) for r in regions]
        for _ in range(self.looks - 1):
            active, zoomed = [], []
            for i, chain in enumerate(chains):
                region = expand_box(chain[-1], w, h, self.zoom - 1)
                area = float((region[2] - region[0]) * (region[3] - region[1]))
                if len(chain) == len(chains[0]) and area <= 0.8 * areas[i]:
                    active.append(i)
                    zoomed.append(region)
                    areas[i] = area
            if not active:
                break
            for i, box in zip(active, self.localize(image, zoomed), strict=True):
                chains[i].append(box)
        boxes = []
        for chain in chains:
            boxes += chain[::-1]
            if len(chain) > 1:
                center, half = (
                    (chain[-1][:2] + chain[-1][2:]) / 2,
                    (chain[-1][2:] - chain[-1][:2]) / 2,
                )
                boxes += [
                    np.concatenate([center - half * s, center + half * s]) for s in self.scales
                ]
        return boxes

    def candidates(self, image: np.ndarray) -> list[np.ndarray]:
        """The boxes to read first: the search from the whole photo (the photo itself without a
        localizer)."""
        h, w = image.shape[:2]
        whole = np.array([0, 0, w, h], np.float64)
        return self.search(image, [whole]) if self.localizer is not None else [whole]

    def tiles(self, image: np.ndarray) -> list[np.ndarray]:
        """Four overlapping quarters of the photo (each `tile` of its width and height), where
        the fallback search starts."""
        h, w = image.shape[:2]
        tw, th = w * self.tile, h * self.tile
        return [np.array([x, y, x + tw, y + th]).round() for y in (0, h - th) for x in (0, w - tw)]

    def _best(self, image, boxes) -> Reading:
        """Read every box; the most confident reading wins."""
        readings = self.read_crops(self.crops(image, boxes))
        best = max(range(len(boxes)), key=lambda i: readings[i][1])
        h, w = image.shape[:2]
        box = np.clip(boxes[best], 0, [w, h, w, h])
        return Reading(readings[best][0], readings[best][1], [float(v) for v in box])

    def __call__(self, image: np.ndarray) -> Reading:
        """Read one RGB uint8 photo (H, W, 3): the search from the whole photo, and when its
        best reading is less confident than `fallback`, the search from four tiles too."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} "
                             f"{image.shape}")  # fmt: skip
        reading = self._best(image, self.candidates(image))
        if self.localizer is not None and reading.confidence < self.fallback:
            other = self._best(image, self.search(image, self.tiles(image)))
            reading = other if other.confidence > reading.confidence else reading
        return reading
