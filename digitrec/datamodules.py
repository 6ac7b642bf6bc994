"""LightningDataModules over the numpy datasets in digitrec.data."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from digitrec.data import mnist, notmnist, scenes, svhn
from digitrec.data.sequences import Sequences, SequenceSpec, compose, split_pool

# glyph pools: name → loader(data_dir, download=, verify=) → MNIST's four arrays
GLYPH_SOURCES = {"mnist": mnist.load_mnist, "notmnist": notmnist.load_notmnist}


def _as_batch(s: Sequences, sl: slice = slice(None)) -> dict[str, torch.Tensor]:
    return {
        "image": torch.from_numpy(s.images[sl]).unsqueeze(1),  # uint8 (B, 1, H, W)
        "length": torch.from_numpy(s.length[sl]),
        "digits": torch.from_numpy(s.digits[sl]),
        "box": torch.from_numpy(s.box[sl]),
    }


class SequenceStream(IterableDataset):
    """An endless stream of freshly composed batches; one epoch = `batches_per_epoch` of them.

    The generator state lives on in the process across epochs, so epochs never repeat data
    (use persistent workers when num_workers > 0).
    """

    def __init__(self, glyphs, labels, spec, batch_size, batches_per_epoch, seed, transform=None,
                 transform_group: int = 1, rank: int = 0):  # fmt: skip
        self.glyphs, self.labels, self.spec = glyphs, labels, spec
        self.batch_size, self.batches_per_epoch, self.seed = batch_size, batches_per_epoch, seed
        self.rank = rank  # each training process (DDP rank) draws its own numbers
        self.transform, self.transform_group = transform, transform_group
        self._rng: np.random.Generator | None = None

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self):
        info = get_worker_info()
        workers, wid = (info.num_workers, info.id) if info else (1, 0)
        if self._rng is None:
            self._rng = np.random.default_rng([self.seed, wid, *([self.rank] if self.rank else [])])
            if hasattr(self.transform, "reseed"):  # its own generator, drawn from this stream's
                self.transform.reseed(int(self._rng.integers(2**31)))
        n = len(range(wid, self.batches_per_epoch, workers))
        for _ in range(n):
            s = compose(self.glyphs, self.labels, self.spec, self.batch_size, self._rng,
                        self.transform, self.transform_group)  # fmt: skip
            yield _as_batch(s)


class FixedBatches(Dataset):
    """A fixed, pre-composed evaluation set served as whole batches."""

    def __init__(self, sequences: Sequences, batch_size: int):
        self.sequences, self.batch_size = sequences, batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.sequences) / self.batch_size)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return _as_batch(self.sequences, slice(i * self.batch_size, (i + 1) * self.batch_size))


class Albumentations:
    """An albumentations pipeline as a stack → stack function (one parameter draw per call).

    albumentations keeps its own random generator (seeded from OS entropy unless told otherwise),
    so `reseed` ties it to the training stream: the same `seed` gives the same augmented numbers.
    """

    def __init__(self, pipeline):
        self.pipeline = pipeline

    def reseed(self, seed: int) -> None:
        self.pipeline.set_random_seed(seed)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """One parameter draw for the whole stack."""
        return np.asarray(self.pipeline(images=images)["images"])

    def one(self, image: np.ndarray) -> np.ndarray:
        """One image (H, W, C), its own parameter draw."""
        return self.pipeline(image=image)["image"]


def _albumentations_fn(pipeline) -> Albumentations | None:
    """None when the pipeline is empty (augmentation=none)."""
    if pipeline is None or len(getattr(pipeline, "transforms", [1])) == 0:
        return None
    return Albumentations(pipeline)


class _BatchDataModule(pl.LightningDataModule):
    """What both datamodules share: datasets that yield whole batches, and a global batch size
    split evenly over the training processes."""

    batch_size: int
    num_workers: int

    def _processes(self) -> tuple[int, int]:
        """(number of training processes, this one's rank); data.batch_size is the global batch:
        with N training processes each draws 1/N of it."""
        world, rank = (
            (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
        )
        if self.batch_size % world:
            raise ValueError(
                f"data.batch_size={self.batch_size}: must divide evenly over {world} processes"
            )
        return world, rank

    def _loader(self, dataset) -> DataLoader:
        return DataLoader(dataset, batch_size=None, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)  # fmt: skip


class SequenceDataModule(_BatchDataModule):
    """Synthetic numbers of `min_len`..`max_len` glyphs.

    Train and validation numbers are built from disjoint parts of the glyph source's train split
    (the last `val_glyphs` glyphs validate); test numbers only from its test split.
    """

    def __init__(
        self,
        data_dir: str,
        glyphs: str = "mnist",
        max_len: int = 5,
        min_len: int = 1,
        channels: int = 1,
        height: int = 28,
        width: int = 112,
        length_probs: Sequence[float] | None = None,
        train_length_probs: Sequence[float] | None = None,
        gap: Sequence[int] = (0, 3),
        jitter: int = 2,
        val_glyphs: int = 5000,
        train_size: int = 51200,
        val_size: int = 5000,
        test_size: int = 10000,
        batch_size: int = 128,
        eval_batch_size: int = 500,
        seed: int = 0,
        num_workers: int = 0,
        augmentation=None,
        augment_group: int = 16,
        download: bool = True,
        verify: bool = True,
    ):
        super().__init__()
        if glyphs not in GLYPH_SOURCES:
            raise ValueError(f"data.glyphs={glyphs!r}: expected one of {sorted(GLYPH_SOURCES)}")
        if channels != 1:
            raise ValueError(f"data.channels={channels}: {glyphs} sequences are grayscale (1)")
        self.data_dir = Path(data_dir)
        self.spec = SequenceSpec(
            max_len=max_len,
            min_len=min_len,
            height=height,
            width=width,
            length_probs=tuple(length_probs) if length_probs is not None else None,
            gap=(int(gap[0]), int(gap[1])),
            jitter=jitter,
        )
        # training may weight lengths differently (more long numbers = more digits per image)
        self.train_spec = (
            self.spec
            if train_length_probs is None
            else dataclasses.replace(self.spec, length_probs=tuple(train_length_probs))
        )
        self.glyphs, self.download, self.verify, self.seed = glyphs, download, verify, seed
        self.val_glyphs, self.train_size = val_glyphs, train_size
        self.val_size, self.test_size = val_size, test_size
        self.batch_size, self.eval_batch_size, self.num_workers = (
            batch_size,
            eval_batch_size,
            num_workers,
        )
        self.transform = _albumentations_fn(augmentation)
        self.augment_group = augment_group
        self.train_set = self.val_set = self.test_set = None

    def load_glyphs(self) -> dict[str, np.ndarray]:
        loader = GLYPH_SOURCES[self.glyphs]
        return loader(self.data_dir, download=self.download, verify=self.verify)

    def prepare_data(self) -> None:
        self.load_glyphs()  # downloads once, before any process reads

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        world, rank = self._processes()
        data = self.load_glyphs()
        (tr_x, tr_y), (va_x, va_y) = split_pool(
            data["train_images"], data["train_labels"], self.val_glyphs
        )
        self.train_set = SequenceStream(
            tr_x, tr_y, self.train_spec, self.batch_size // world,
            max(1, self.train_size // self.batch_size), self.seed, self.transform,
            self.augment_group, rank,
        )  # fmt: skip
        self.val_set = compose(
            va_x, va_y, self.spec, self.val_size, np.random.default_rng([self.seed, 1])
        )
        self.test_set = compose(
            data["test_images"], data["test_labels"], self.spec, self.test_size,
            np.random.default_rng([self.seed, 2]),
        )  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set)

    def val_dataloader(self) -> DataLoader:
        return self._loader(FixedBatches(self.val_set, self.eval_batch_size))

    def test_dataloader(self) -> DataLoader:
        return self._loader(FixedBatches(self.test_set, self.eval_batch_size))


# ------------------------------------------------------------------------------------- SVHN
def crop_batch(images: np.ndarray, boxes: np.ndarray, size: int, ox: np.ndarray, oy: np.ndarray,
               index: np.ndarray | None = None):  # fmt: skip
    """`size` x `size` windows at per-image offsets (ox, oy) of (N, H, W, C) images (rows `index`
    of them, default all), in one gather; the boxes move with the window, clipped to it.
    Returns (B, size, size, C) windows (a view of a channels-first copy) and the boxes."""
    index = np.arange(len(images)) if index is None else index
    windows = sliding_window_view(images, (size, size), axis=(1, 2))  # (N, h, w, C, size, size)
    out = windows[index, oy, ox].transpose(0, 2, 3, 1)  # copies B blocks of (C, size, size)
    shift = np.stack([ox, oy, ox, oy], 1).astype(np.float32)
    return out, np.clip(boxes[index] - shift, 0, size)


def _to_batch(images: np.ndarray, length, digits, box) -> dict:
    # windows from crop_batch are channels-first in memory: the permute makes them contiguous again
    # (uint8 pixels: normalization, e.g. the paper's mean subtraction, is the model's business)
    x = torch.from_numpy(images).permute(0, 3, 1, 2)  # (B, C, H, W)
    return {"image": x, "length": torch.from_numpy(length), "digits": torch.from_numpy(digits),
            "box": torch.from_numpy(box)}  # fmt: skip


class CroppedStream(IterableDataset):
    """Shuffled training batches from in-memory 64x64 images: a random `crop` x `crop` window per
    image (the paper), then the albumentations pipeline per image when one is given."""

    def __init__(self, data: dict[str, np.ndarray], crop: int, batch_size: int, seed: int,
                 transform=None, rank: int = 0, world: int = 1):  # fmt: skip
        self.data, self.crop, self.batch_size, self.seed = data, crop, batch_size, seed
        self.transform, self.rank, self.world = transform, rank, world
        self.n = len(data["length"])
        self._rng: np.random.Generator | None = None

    def __len__(self) -> int:
        return max(1, self.n // (self.batch_size * self.world))

    def __iter__(self):
        info = get_worker_info()
        workers, wid = (info.num_workers, info.id) if info else (1, 0)
        if self._rng is None:
            self._rng = np.random.default_rng([self.seed, wid, self.rank])
            if hasattr(self.transform, "reseed"):
                self.transform.reseed(int(self._rng.integers(2**31)))
        # every rank draws the same permutation (seeded by epoch order) and takes its share
        order = np.random.default_rng([self.seed, int(self._rng.integers(2**31))]).permutation(
            self.n)  # fmt: skip
        per_rank = len(self) * self.batch_size
        order = order[self.rank * per_rank : (self.rank + 1) * per_rank]
        size = self.data["images"].shape[1]
        for b in range(wid, len(self), workers):
            idx = np.sort(order[b * self.batch_size : (b + 1) * self.batch_size])
            ox, oy = self._rng.integers(0, size - self.crop + 1, (2, len(idx)))
            images, box = crop_batch(self.data["images"], self.data["box"], self.crop, ox, oy,
                                     idx)  # fmt: skip
            if self.transform is not None:
                images = np.stack([self.transform.one(np.ascontiguousarray(im)) for im in images])
            yield _to_batch(images, self.data["length"][idx], self.data["digits"][idx], box)


class ImageBatches(Dataset):
    """A fixed evaluation set served as whole batches."""

    def __init__(self, s: Sequences, batch_size: int):
        self.s, self.batch_size = s, batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.s) / self.batch_size)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return _to_batch(self.s.images[sl], self.s.length[sl], self.s.digits[sl], self.s.box[sl])


class SVHNDataModule(_BatchDataModule):
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
            raise ValueError(f"data.crop={crop}, data.height={height}, data.width={width}: "
                             f"expected height = width = crop <= image_size={image_size}")  # fmt: skip
        self.root = Path(root)
        self.pre = svhn.Preprocessing(size=image_size, expand=expand, max_len=max_len,
                                      long_numbers=long_numbers)  # fmt: skip
        self.use_extra, self.crop = use_extra, crop
        self.val_size, self.split_seed, self.train_size = val_size, split_seed, train_size
        self.test_size = test_size
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.num_workers, self.download = seed, num_workers, download
        self.cache_workers = cache_workers
        self.transform = _albumentations_fn(augmentation)
        self.train_set = self.val_set = self.test_set = None
        self.rendered = False  # set by setup: the caches record whether the root was rendered

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "extra", "test") if self.use_extra else ("train", "test")

    def prepare_data(self) -> None:
        for split in self.splits:
            svhn.build_cache(self.root, split, self.pre, download=self.download,
                             workers=self.cache_workers)  # fmt: skip

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        world, rank = self._processes()
        caches = {s: svhn.load_cache(svhn.build_cache(self.root, s, self.pre, self.download,
                                                      self.cache_workers))
                  for s in self.splits}  # fmt: skip
        self.rendered = caches["train"]["rendered"]
        pool = {k: np.concatenate([caches[s][k] for s in self.splits if s != "test"])
                for k in ("images", "length", "digits", "box")}  # fmt: skip
        n = len(pool["length"])
        if not 0 <= self.val_size < n:
            raise ValueError(f"data.val_size={self.val_size}: expected 0..{n - 1} "
                             f"(train{' + extra' if self.use_extra else ''} has {n} images)")  # fmt: skip
        order = np.random.default_rng(self.split_seed).permutation(n)
        val, train = np.sort(order[: self.val_size]), np.sort(order[self.val_size :])
        if self.train_size:
            train = train[: self.train_size]
        self.train_set = CroppedStream({k: v[train] for k, v in pool.items()}, self.crop,
                                       self.batch_size // world, self.seed, self.transform,
                                       rank, world)  # fmt: skip
        self.val_set = self._center({k: v[val] for k, v in pool.items()})
        test = caches["test"]
        if self.test_size:
            test = {k: test[k][: self.test_size] for k in ("images", "length", "digits", "box")}
        self.test_set = self._center(test)

    def _center(self, d: dict[str, np.ndarray]) -> Sequences:
        o = (d["images"].shape[1] - self.crop) // 2
        n = len(d["length"])
        images, box = crop_batch(d["images"], d["box"], self.crop, np.full(n, o), np.full(n, o))
        return Sequences(images, d["length"], d["digits"], box)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set)

    def val_dataloader(self) -> DataLoader:
        return self._loader(ImageBatches(self.val_set, self.eval_batch_size))

    def test_dataloader(self) -> DataLoader:
        return self._loader(ImageBatches(self.test_set, self.eval_batch_size))


# ----------------------------------------------------------------------- scenes (localizer)
def _scene_batch(sources: dict[str, np.ndarray], idx: np.ndarray, size: int,
                 rng: np.random.Generator, whole: float, zoomed: float, scale,
                 aspect) -> dict:  # fmt: skip
    """A batch of `size` x `size` scenes and their union boxes (normalized x0, y0, x1, y1): with
    probability `whole` the source image itself (SVHN's framing), with probability `zoomed` a
    view zoomed in around the number (a later look's), else the source pasted into clutter
    (digitrec.data.scenes) of a scene whose width/height is drawn from `aspect`."""
    import cv2

    images = np.zeros((len(idx), size, size, 3), np.uint8)
    boxes = np.zeros((len(idx), 4), np.float32)
    s = sources["images"].shape[1]
    for j, i in enumerate(idx):
        src, box = sources["images"][i], sources["box"][i : i + 1]
        draw = rng.random()
        if draw < whole:
            images[j] = cv2.resize(src, (size, size), interpolation=cv2.INTER_LINEAR)
            boxes[j] = box[0] * (size / s)
        elif draw < whole + zoomed:
            images[j], boxes[j] = scenes.zoomed_view(rng, src, box[0], size)
        else:
            images[j], moved = scenes.compose(rng, src, box, tuple(sources["size"][i]),
                                              (size, size), rng.uniform(*aspect), scale)  # fmt: skip
            boxes[j] = moved[0]
    return {"image": torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
            "box": torch.from_numpy(np.clip(boxes / size, 0, 1))}  # fmt: skip


class SceneStream(IterableDataset):
    """Endless freshly composed scene batches; an epoch is one pass over the sources' count."""

    def __init__(self, sources, size, batch_size, seed, whole, zoomed, scale, aspect,
                 rank: int = 0):  # fmt: skip
        self.sources, self.size, self.batch_size, self.seed = sources, size, batch_size, seed
        self.mix, self.rank = (whole, zoomed, scale, aspect), rank
        self._rng: np.random.Generator | None = None

    def __len__(self) -> int:
        return max(1, len(self.sources["box"]) // self.batch_size)

    def __iter__(self):
        info = get_worker_info()
        workers, wid = (info.num_workers, info.id) if info else (1, 0)
        if self._rng is None:
            self._rng = np.random.default_rng([self.seed, wid, self.rank])
        for _ in range(wid, len(self), workers):
            idx = self._rng.integers(0, len(self.sources["box"]), self.batch_size)
            yield _scene_batch(self.sources, idx, self.size, self._rng, *self.mix)


class FixedScenes(Dataset):
    """Scenes composed once (a fixed seed) for validation and testing, served as batches."""

    def __init__(self, sources, size, batch_size, seed, whole, zoomed, scale, aspect):
        rng = np.random.default_rng(seed)
        batch = _scene_batch(sources, np.arange(len(sources["box"])), size, rng, whole, zoomed,
                             scale, aspect)  # fmt: skip
        self.images, self.box, self.batch_size = batch["image"], batch["box"], batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.box) / self.batch_size)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return {"image": self.images[sl], "box": self.box[sl]}


class SceneDataModule(_BatchDataModule):
    """The localizer's data: whole images of an SVHN format-1 root (real or the rendered stand-in),
    cached once at `source_size` (squashed squares that remember their real size), composed into
    `size` x `size` scenes: a fraction `whole` as they are, a fraction `zoomed` as the views around
    the number that the photo reader's later looks see, the rest pasted at a random place and a
    width of `scale` of a cluttered scene (digitrec.data.scenes). Validation holds out
    `val_size` train images; the test scenes come from the test split. Batches: uint8 images
    (B, 3, size, size) and union boxes (B, 4), normalized x0, y0, x1, y1."""

    def __init__(self, root: str, size: int = 128, source_size: int = 96, whole: float = 0.25,
                 zoomed: float = 0.0, scale: Sequence[float] = scenes.SCALE,
                 aspect: Sequence[float] = (0.6, 1.8), val_size: int = 2000,
                 split_seed: int = 0, train_size: int | None = None,
                 test_size: int | None = 2000, batch_size: int = 64, eval_batch_size: int = 256,
                 seed: int = 0, num_workers: int = 0, download: bool = True,
                 cache_workers: int = 2, augmentation=None, channels: int = 3,
                 height: int = 128, width: int = 128):  # fmt: skip
        super().__init__()
        if (height, width) != (size, size) or channels != 3:
            raise ValueError(f"data.height={height}, data.width={width}, data.channels={channels}:"
                             f" expected {size}, {size}, 3 (data.size)")  # fmt: skip
        mix_ok = 0 <= whole and 0 <= zoomed and whole + zoomed <= 1
        if not mix_ok or not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"data.whole={whole}, data.zoomed={zoomed}, data.scale={list(scale)}:"
                             " expected probabilities summing to at most 1 and 0 < low <= high"
                             " <= 1")  # fmt: skip
        self.root, self.size = Path(root), size
        self.pre = svhn.Preprocessing(size=source_size, whole_image=True, max_len=5)
        self.whole, self.zoomed = whole, zoomed
        self.scale, self.aspect = tuple(scale), tuple(aspect)
        self.val_size, self.split_seed, self.train_size = val_size, split_seed, train_size
        self.test_size, self.batch_size, self.eval_batch_size = (
            test_size,
            batch_size,
            eval_batch_size,
        )
        self.seed, self.num_workers, self.download = seed, num_workers, download
        self.cache_workers = cache_workers
        self.train_set = self.val_set = self.test_set = None
        self.rendered = False

    def prepare_data(self) -> None:
        for split in ("train", "test"):
            svhn.build_cache(self.root, split, self.pre, self.download, self.cache_workers)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        world, rank = self._processes()
        keys = ("images", "box", "size")
        caches = {s: svhn.load_cache(svhn.build_cache(self.root, s, self.pre, self.download,
                                                      self.cache_workers))
                  for s in ("train", "test")}  # fmt: skip
        self.rendered = caches["train"]["rendered"]
        n = len(caches["train"]["box"])
        if not 0 < self.val_size < n:
            raise ValueError(f"data.val_size={self.val_size}: expected 1..{n - 1} (train has {n})")
        order = np.random.default_rng(self.split_seed).permutation(n)
        val, train = np.sort(order[: self.val_size]), np.sort(order[self.val_size :])
        if self.train_size:
            train = train[: self.train_size]
        pick = lambda d, i: {k: d[k][i] for k in keys}  # noqa: E731
        args = (self.whole, self.zoomed, self.scale, self.aspect)
        self.train_set = SceneStream(pick(caches["train"], train), self.size,
                                     self.batch_size // world, self.seed, *args, rank)  # fmt: skip
        self.val_set = FixedScenes(pick(caches["train"], val), self.size, self.eval_batch_size,
                                   self.split_seed + 1, *args)  # fmt: skip
        test = caches["test"]
        m = min(self.test_size or len(test["box"]), len(test["box"]))
        self.test_set = FixedScenes(pick(test, np.arange(m)), self.size, self.eval_batch_size,
                                    self.split_seed + 2, *args)  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set)
