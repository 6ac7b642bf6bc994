"""The detector's data: real street photos with number boxes (curtin_numbers), letterboxed whole
to `size` x `size` — the photo at full resolution up to `size`, never squashed.

Training draws batches of the training photos in a fresh order each epoch (`svhn_root`: real SVHN
format-1 images join them, their digit boxes' union as the number's box); validation holds out
`val_size` training photos (by `split_seed`); the test split is measured, never trained or tuned
on. Batches: `image` (B, 3, size, size) uint8, `boxes` (B, max_boxes, 4) float32 in input pixels
(-1 past `count`), `count` (B,).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from digitrec.data import svhn
from digitrec.data.street_photos import Photo, load_photos, read_split
from digitrec.datamodules.base import (
    BatchDataModule,
    SeededStream,
    WholeBatches,
    check_square_rgb,
    held_out,
    refuse_augmentation,
)
from digitrec.datamodules.sequences import _albumentations_fn


def _batch(images: np.ndarray, boxes: list[np.ndarray], max_boxes: int) -> dict[str, torch.Tensor]:
    padded = np.full((len(boxes), max_boxes, 4), -1, np.float32)
    count = np.zeros(len(boxes), np.int64)
    for i, b in enumerate(boxes):
        b = b[:max_boxes]
        padded[i, : len(b)], count[i] = b, len(b)
    return {
        "image": torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2),
        "boxes": torch.from_numpy(padded),
        "count": torch.from_numpy(count),
    }


class PhotoBatches(WholeBatches):
    """A fixed set of photos served as whole batches (validation, test)."""

    def __init__(self, images: np.ndarray, boxes: list[np.ndarray], batch_size: int, max_boxes):
        super().__init__(len(images), batch_size)
        self.images, self.box, self.max_boxes = images, boxes, max_boxes  # box: one per image

    def batch(self, sl: slice) -> dict[str, torch.Tensor]:
        return _batch(self.images[sl], self.box[sl], self.max_boxes)


class PhotoStream(SeededStream):
    """The training photos in a fresh random order each epoch, in batches."""

    def __init__(self, images, boxes, batch_size: int, max_boxes: int, seed: int, rank: int = 0):
        self.images, self.boxes, self.batch_size = images, boxes, batch_size
        self.max_boxes, self.seed, self.rank = max_boxes, seed, rank

    def __len__(self) -> int:
        return max(1, len(self.images) // self.batch_size)

    def __iter__(self):
        workers, wid = self._worker()
        order = self._rng.permutation(len(self.images))
        for k in range(wid, len(self), workers):
            idx = np.sort(order[k * self.batch_size : (k + 1) * self.batch_size])
            yield _batch(self.images[idx], [self.boxes[i] for i in idx], self.max_boxes)


def svhn_photos(root: Path, split: str) -> list[Photo]:
    """Real SVHN format-1 images as photos with one number box each (the digits' union)."""
    from digitrec.data.street_photos import NumberBox

    folder, records = svhn.split_records(root, split, download=False)
    out = []
    for r in records:
        if len(r.boxes) == 0:
            continue
        x0, y0, x1, y1 = (float(v) for v in svhn.union_box(r.boxes))
        number = "".join(str(int(d) % 10) for d in r.boxes[:, 0])
        box = NumberBox(number, (x0, y0, x1, y1), True, False)
        out.append(Photo(folder / r.name, 0, 0, (box,)))  # size 0: unknown until decoded
    return out


class StreetPhotoDataModule(BatchDataModule):
    """Street photos with number boxes for the detector (see the module's docstring)."""

    def __init__(
        self,
        root: str,
        svhn_root: str | None = None,
        size: int = 512,
        val_size: int = 75,
        split_seed: int = 0,
        train_size: int | None = None,
        test_size: int | None = None,
        batch_size: int = 8,
        eval_batch_size: int = 16,
        max_boxes: int = 8,
        seed: int = 0,
        num_workers: int = 0,
        augmentation=None,
        channels: int = 3,
        height: int = 512,
        width: int = 512,
    ):
        super().__init__()
        refuse_augmentation(
            _albumentations_fn(augmentation),
            "street_photos",
            "applies no albumentations pipeline yet",
        )
        check_square_rgb(size, channels, height, width)
        self.root, self.svhn_root = Path(root), Path(svhn_root) if svhn_root else None
        self.size, self.max_boxes = size, max_boxes
        self.val_size, self.split_seed, self.train_size = val_size, split_seed, train_size
        self.test_size = test_size
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.num_workers = seed, num_workers
        self.train_set = self.val_set = self.test_set = None

    def preprocessing(self) -> dict:
        return {"kind": "letterbox", "size": self.size}

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        world, rank = self._processes()
        photos = read_split(self.root / "train")
        val, train = held_out(
            len(photos),
            self.val_size,
            self.split_seed,
            self.train_size,
            min_val=1,
            pool=f"{self.root / 'train'} has {len(photos)} photos",
        )
        pool = [photos[i] for i in train]
        if self.svhn_root is not None:
            pool += svhn_photos(self.svhn_root, "train")
        images, boxes = load_photos(pool, self.size)
        self.train_set = PhotoStream(
            images, boxes, self.batch_size // world, self.max_boxes, self.seed, rank
        )
        val_images, val_boxes = load_photos([photos[i] for i in val], self.size)
        self.val_set = PhotoBatches(val_images, val_boxes, self.eval_batch_size, self.max_boxes)
        test = read_split(self.root / "test")[: self.test_size]
        test_images, test_boxes = load_photos(test, self.size)
        self.test_set = PhotoBatches(test_images, test_boxes, self.eval_batch_size, self.max_boxes)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set)
