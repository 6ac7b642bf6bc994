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

from digitrec.data.sequences import labels_to_string
from digitrec.data.svhn import crop_resize, expand_box
from digitrec.inference.preprocessing import crop_inputs, to_reader_input
from digitrec.models.fuse import fuse_conv_bn
from digitrec.tasks import decode, load_task


@dataclass
class Reading:
    number: str  # "" when the reader sees no digits
    confidence: float  # the reader's probability of that number
    box: list[float]  # the number's box in the photo's pixels: x0, y0, x1, y1
    candidates: list[dict] | None = None  # the detector's: every candidate number, best first

    def scaled(self, factor: float) -> Reading:
        """The same reading with every box times `factor` (a reduced decode's pixels → the
        photo's)."""
        if factor == 1:
            return self
        grow = lambda box: [v * factor for v in box]  # noqa: E731
        candidates = None
        if self.candidates is not None:
            candidates = [
                {**c, "box": grow(c["box"]), "digits": [grow(d) for d in c["digits"]]}
                for c in self.candidates
            ]
        return Reading(self.number, self.confidence, grow(self.box), candidates)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["confidence"] = round(self.confidence, 4)
        out["box"] = [round(v, 1) for v in self.box]
        if self.candidates is None:
            del out["candidates"]
        else:
            for c in out["candidates"]:
                c["box"] = [round(v, 1) for v in c["box"]]
                c["digits"] = [[round(v, 1) for v in d] for d in c["digits"]]
        return out


class PhotoReader:
    """Reads the number in photos of any size with a DigitReader and (optionally) a BoxLocalizer.

    `expand`, `image_size` and `crop` are the reader's training preprocessing, read from its
    checkpoint (the paper's SVHN recipe: 0.3, 64, 54; arguments override it);
    `zoom` the size of each further look's region in units of the box before; `looks` how
    many looks at most (1: the whole photo only); `scales` the extra candidates made by scaling the
    last box about its center; below a confidence of `fallback` the search starts again from
    four overlapping tiles of `tile` x the photo's size (positions as well as scales)."""

    def __init__(
        self,
        reader,
        localizer=None,
        expand: float | None = None,
        image_size: int | None = None,
        crop: int | None = None,
        zoom: float = 3.0,
        looks: int = 3,
        scales: tuple[float, ...] = (1.2,),
        fallback: float = 0.0,
        tile: float = 0.6,
    ):
        # batch norms folded into their convolutions: same outputs to float rounding, faster
        self.reader = fuse_conv_bn(reader)
        self.localizer = fuse_conv_bn(localizer) if localizer is not None else None
        # the reader's preprocessing recipe, as its checkpoint carries it (arguments override)
        recipe = getattr(reader, "preprocessing", None) or reader.default_preprocessing()
        if recipe.get("kind") != "crop":
            raise ValueError(
                f"a reader of {recipe.get('kind')!r} inputs: the two-stage reader needs one "
                "trained on crops (data=svhn)"
            )
        expand = recipe["expand"] if expand is None else expand
        image_size = recipe["image_size"] if image_size is None else image_size
        crop = recipe["crop"] if crop is None else crop
        self.expand, self.image_size, self.crop = expand, image_size, crop
        if looks < 1:
            raise ValueError(f"looks={looks}: expected at least 1")
        self.zoom, self.looks, self.scales = zoom, looks, scales
        self.fallback, self.tile = fallback, tile
        shape = getattr(reader.net, "input_shape", (3, crop, crop))
        if tuple(shape) != (3, crop, crop):
            raise ValueError(
                f"reader input {tuple(shape)}: expected (3, {crop}, {crop}) RGB "
                "crops (a reader trained with data=svhn)"
            )
        self.loc_size = localizer.net.input_shape[-1] if localizer else None

    @classmethod
    def from_checkpoints(cls, reader: str | Path, localizer: str | Path | None = None, **kwargs):
        """From checkpoint files (model URIs: digitrec.registry.open_reader)."""
        return cls(load_task(reader), load_task(localizer) if localizer else None, **kwargs)

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
        return crop_inputs(image, boxes, self.expand, self.image_size, self.crop)

    @torch.inference_mode()
    def read_crops(self, crops: np.ndarray) -> list[tuple[str, float]]:
        """(number, confidence) for each (N, crop, crop, 3) uint8 crop."""
        x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2)
        d = decode.joint_decode(*self.reader(x))
        return [
            (labels_to_string(digits, n), float(c))
            for digits, n, c in zip(
                d.digits.numpy(), d.length.numpy(), d.confidence.numpy(), strict=True
            )
        ]

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
            raise ValueError(
                f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}"
            )
        reading = self._best(image, self.candidates(image))
        if self.localizer is not None and reading.confidence < self.fallback:
            other = self._best(image, self.search(image, self.tiles(image)))
            reading = other if other.confidence > reading.confidence else reading
        return reading


class WholeImageReader:
    """A reader of whole images (a reader of synthetic MNIST numbers, 1 x 28 x 112, or any
    reader without a localizer): the photo becomes one input (`to_reader_input`), the box is
    the whole photo. Same interface as PhotoReader."""

    fallback = 0.0

    def __init__(self, reader):
        self.reader = fuse_conv_bn(reader)
        self.input_shape = tuple(int(v) for v in reader.net.input_shape)

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> Reading:
        x = to_reader_input(image, *self.input_shape)
        x = torch.from_numpy(np.ascontiguousarray(x))
        x = x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]
        d = decode.joint_decode(*self.reader(x))
        number = labels_to_string(d.digits[0].numpy(), int(d.length[0]))
        h, w = image.shape[:2]
        return Reading(number, float(d.confidence[0]), [0.0, 0.0, float(w), float(h)])


def open_reader(
    reader: str | Path, localizer: str | Path | None = None, **kwargs
) -> PhotoReader | WholeImageReader:
    """The reader for checkpoint files (model URIs: digitrec.registry.open_reader): a
    DetectorReader for a detector (`sizes`: its input sizes), a PhotoReader
    for a reader of crops with a localizer, else a WholeImageReader. What each reads is what its
    checkpoint says it was trained on."""
    sizes = kwargs.pop("sizes", None)  # a detector's; a two-stage reader has none
    module = load_task(reader)
    if module.task == "detector":
        if localizer is not None:
            raise ValueError(f"{reader}: a detector reads whole photos; give no --localizer")
        from digitrec.inference.detection import DetectorReader

        return DetectorReader(module, sizes=sizes)
    if module.task != "reader":
        raise ValueError(
            f"{reader}: a {module.task} checkpoint; expected a reader (a number reader's best.ckpt)"
        )
    crops = module.preprocessing.get("kind") == "crop"
    if localizer is None and not crops:
        return WholeImageReader(module)
    if localizer is not None and not crops:
        shape = tuple(int(v) for v in module.net.input_shape)
        raise ValueError(
            f"{reader}: reads {shape} inputs; a localizer needs a reader of (3, 54, 54) SVHN crops "
            "(data=svhn)"
        )
    return PhotoReader(module, load_task(localizer) if localizer else None, **kwargs)
