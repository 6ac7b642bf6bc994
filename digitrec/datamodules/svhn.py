"""SVHN format 1 (or the rendered stand-in): random crops of the cached 64x64 images in training,
the center crop at evaluation."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch.utils.data import DataLoader

from digitrec.data import svhn
from digitrec.data.sequences import Sequences
from digitrec.datamodules.base import (
    BatchDataModule,
    DatasetInfo,
    SeededStream,
    WholeBatches,
    batch_schema,
    held_out,
)
from digitrec.datamodules.sequences import _albumentations_fn

log = logging.getLogger(__name__)


def crop_batch(
    images: np.ndarray,
    boxes: np.ndarray,
    size: int,
    ox: np.ndarray,
    oy: np.ndarray,
    index: np.ndarray | None = None,
):
    """`size` x `size` windows at per-image offsets (ox, oy) of (N, H, W, C) images (rows `index`
    of them, default all), in one gather; the boxes move with the window, clipped to it.
    Returns (B, size, size, C) windows (a view of a channels-first copy) and the boxes."""
    index = np.arange(len(images)) if index is None else index
    windows = sliding_window_view(images, (size, size), axis=(1, 2))  # (N, h, w, C, size, size)
    out = windows[index, oy, ox].transpose(0, 2, 3, 1)  # copies B blocks of (C, size, size)
    shift = np.stack([ox, oy, ox, oy], 1).astype(np.float32)
    return out, np.clip(boxes[index] - shift, 0, size)


def center_crops(d: dict[str, np.ndarray], crop: int) -> Sequences:
    """The center `crop` x `crop` window of every cached image (the paper's evaluation crop)."""
    o, n = (d["images"].shape[1] - crop) // 2, len(d["length"])
    images, box = crop_batch(d["images"], d["box"], crop, np.full(n, o), np.full(n, o))
    return Sequences(images, d["length"], d["digits"], box)


def ground_truth_crops(
    root, split: str, image_size: int = 64, expand: float = 0.3, crop: int = 54, max_len: int = 5
) -> Sequences:
    """An SVHN format-1 split's ground-truth crops as the paper evaluates them: the union box
    enlarged by `expand`, resized to `image_size`, the center `crop` window. Cached once per
    preprocessing (svhn.build_cache; a read-only root caches under XDG_CACHE_HOME); never
    downloads."""
    pre = svhn.Preprocessing(size=image_size, expand=expand, max_len=max_len)
    d = svhn.load_cache(svhn.build_cache(root, split, pre, download=False, progress=False))
    s = center_crops(d, crop)
    return Sequences(np.ascontiguousarray(s.images), s.length, s.digits, s.box)


def _to_batch(images: np.ndarray, length, digits, box) -> dict:
    # windows from crop_batch are channels-first in memory: the permute makes them contiguous again
    # (uint8 pixels: normalization, e.g. the paper's mean subtraction, is the model's business)
    x = torch.from_numpy(images).permute(0, 3, 1, 2)  # (B, C, H, W)
    return {
        "image": x,
        "length": torch.from_numpy(length),
        "digits": torch.from_numpy(digits),
        "box": torch.from_numpy(box),
    }


class CroppedStream(SeededStream):
    """Shuffled training batches from in-memory 64x64 images: a random `crop` x `crop` window per
    image (the paper), then the albumentations pipeline per image when one is given."""

    def __init__(
        self,
        data: dict[str, np.ndarray],
        crop: int,
        batch_size: int,
        seed: int,
        transform=None,
        rank: int = 0,
        world: int = 1,
    ):
        self.data, self.crop, self.batch_size, self.seed = data, crop, batch_size, seed
        self.transform, self.rank, self.world = transform, rank, world
        self.n = len(data["length"])

    def __len__(self) -> int:
        return max(1, self.n // (self.batch_size * self.world))

    def __iter__(self):
        workers, wid = self._worker()
        # every rank draws the same permutation (seeded by epoch order) and takes its share
        order = np.random.default_rng([self.seed, int(self._rng.integers(2**31))]).permutation(
            self.n
        )
        per_rank = len(self) * self.batch_size
        order = order[self.rank * per_rank : (self.rank + 1) * per_rank]
        size = self.data["images"].shape[1]
        for b in range(wid, len(self), workers):
            idx = np.sort(order[b * self.batch_size : (b + 1) * self.batch_size])
            ox, oy = self._rng.integers(0, size - self.crop + 1, (2, len(idx)))
            images, box = crop_batch(self.data["images"], self.data["box"], self.crop, ox, oy, idx)
            if self.transform is not None:
                images = np.stack([self.transform.one(np.ascontiguousarray(im)) for im in images])
            yield _to_batch(images, self.data["length"][idx], self.data["digits"][idx], box)


class ImageBatches(WholeBatches):
    """A fixed evaluation set served as whole batches."""

    def __init__(self, s: Sequences, batch_size: int):
        super().__init__(len(s), batch_size)
        self.s = s

    def batch(self, sl: slice) -> dict[str, torch.Tensor]:
        return _to_batch(self.s.images[sl], self.s.length[sl], self.s.digits[sl], self.s.box[sl])


def rendered_tags(rendered: bool) -> dict[str, str]:
    """The tag of a run on the rendered stand-in (digitrec-data street: not SVHN)."""
    if not rendered:
        return {}
    log.warning("data: rendered street numbers (SYNTHETIC stand-in, not SVHN)")
    return {"synthetic_data": "rendered street numbers (not SVHN)"}


def svhn_name(rendered: bool) -> str:
    return "street-rendered" if rendered else "svhn"


def svhn_source(root: Path, splits: list[str], pre: svhn.Preprocessing, rendered: bool) -> dict:
    """Where an SVHN set comes from: the format-1 root, its splits and their caches (the file
    name carries the preprocessing's hash), real SVHN or the rendered stand-in."""
    caches = {}
    for split in splits:
        path = svhn.cache_path(root, split, pre)
        caches[split] = {
            "file": path.name,
            "bytes": path.stat().st_size if path.is_file() else None,
        }
    kind = "rendered street numbers (SYNTHETIC stand-in, not SVHN)" if rendered else "SVHN format 1"
    return {
        "uri": Path(root).resolve().as_uri(),
        "kind": kind,
        "rendered": rendered,
        "splits": splits,
        "caches": caches,
    }


class SVHNDataModule(BatchDataModule):
    """SVHN format 1 (or the rendered stand-in in its format) with the paper's preprocessing:
    union box + `expand`, resized to `image_size`, random `crop` windows in training and the
    center window at evaluation. `prepare_data` converts each split once into an HDF5 cache keyed
    by the preprocessing config (digitrec.data.svhn.build_cache); `setup` reads the caches into
    memory. Validation: `val_size` images held out from train (+ extra) by `split_seed`."""

    def __init__(
        self,
        root: str,
        use_extra: bool = False,
        image_size: int = 64,
        crop: int = 54,
        expand: float = 0.3,
        max_len: int = 5,
        long_numbers: str = "class",
        channels: int = 3,
        height: int = 54,
        width: int = 54,
        val_size: int = 5000,
        split_seed: int = 0,
        train_size: int | None = None,
        batch_size: int = 32,
        eval_batch_size: int = 256,
        test_size: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
        augmentation=None,
        download: bool = True,
        cache_workers: int = 2,
    ):
        super().__init__()
        if channels != 3:
            raise ValueError(f"data.channels={channels}: SVHN images are RGB (3)")
        if not 0 < crop <= image_size or (height, width) != (crop, crop):
            raise ValueError(
                f"data.crop={crop}, data.height={height}, data.width={width}: "
                f"expected height = width = crop <= image_size={image_size}"
            )
        self.root = Path(root)
        self.pre = svhn.Preprocessing(
            size=image_size, expand=expand, max_len=max_len, long_numbers=long_numbers
        )
        self.use_extra, self.crop = use_extra, crop
        self.val_size, self.split_seed, self.train_size = val_size, split_seed, train_size
        self.test_size = test_size
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.num_workers, self.download = seed, num_workers, download
        self.cache_workers = cache_workers
        self.transform = _albumentations_fn(augmentation)
        self.train_set = self.val_set = self.test_set = None
        self.rendered = False  # set by setup: the caches record whether the root was rendered

    def preprocessing(self) -> dict:
        return {
            "kind": "crop",
            "expand": self.pre.expand,
            "image_size": self.pre.size,
            "crop": self.crop,
        }

    def run_tags(self) -> dict[str, str]:
        return rendered_tags(self.rendered)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "extra", "test") if self.use_extra else ("train", "test")

    def prepare_data(self) -> None:
        for split in self.splits:
            svhn.build_cache(
                self.root, split, self.pre, download=self.download, workers=self.cache_workers
            )

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        world, rank = self._processes()
        caches = {
            s: svhn.load_cache(
                svhn.build_cache(self.root, s, self.pre, self.download, self.cache_workers)
            )
            for s in self.splits
        }
        self.rendered = caches["train"]["rendered"]
        pool = {
            k: np.concatenate([caches[s][k] for s in self.splits if s != "test"])
            for k in ("images", "length", "digits", "box")
        }
        n = len(pool["length"])
        pool_text = f"train{' + extra' if self.use_extra else ''} has {n} images"
        val, train = held_out(
            n, self.val_size, self.split_seed, self.train_size, min_val=0, pool=pool_text
        )
        self.train_set = CroppedStream(
            {k: v[train] for k, v in pool.items()},
            self.crop,
            self.batch_size // world,
            self.seed,
            self.transform,
            rank,
            world,
        )
        self.val_set = self._center({k: v[val] for k, v in pool.items()})
        test = caches["test"]
        if self.test_size:
            test = {k: test[k][: self.test_size] for k in ("images", "length", "digits", "box")}
        self.test_set = self._center(test)

    def describe_datasets(self) -> list[DatasetInfo]:
        """Training, validation and test sets as dataset inputs of the run (after setup)."""
        pre = {**asdict(self.pre), "key": self.pre.key}
        pool = list(self.splits[:-1])
        held = {"val_size": self.val_size, "split_seed": self.split_seed}
        augmentation = (
            [type(t).__name__ for t in self.transform.pipeline.transforms] if self.transform else []
        )
        configs = {
            "training": {
                "preprocessing": pre,
                "crop": f"random {self.crop}x{self.crop}",
                "held_out": held,
                "train_size": self.train_size,
                "seed": self.seed,
                "augmentation": augmentation,
            },
            "validation": {"preprocessing": pre, "crop": "center", "held_out": held},
            "test": {"preprocessing": pre, "crop": "center", "test_size": self.test_size},
        }
        sets = {
            "training": self.train_set.data["length"] if self.train_set else None,
            "validation": self.val_set,
            "test": self.test_set,
        }
        schema = batch_schema(
            3,
            self.crop,
            self.crop,
            {
                "length": ("int64", [-1]),
                "digits": ("int64", [-1, self.pre.max_len]),
                "box": ("float32", [-1, 4]),
            },
        )
        return [
            DatasetInfo(
                f"{svhn_name(self.rendered)}-{short}",
                context,
                svhn_source(
                    self.root, pool if context != "test" else ["test"], self.pre, self.rendered
                ),
                configs[context],
                len(sets[context]) if sets[context] is not None else None,
                schema,
            )
            for context, short in (("training", "train"), ("validation", "val"), ("test", "test"))
        ]

    def _center(self, d: dict[str, np.ndarray]) -> Sequences:
        return center_crops(d, self.crop)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set)

    def val_dataloader(self) -> DataLoader:
        return self._loader(ImageBatches(self.val_set, self.eval_batch_size))

    def test_dataloader(self) -> DataLoader:
        return self._loader(ImageBatches(self.test_set, self.eval_batch_size))
