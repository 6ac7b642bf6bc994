"""LightningDataModules over the numpy datasets in digitrec.data."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from digitrec.data import mnist, notmnist
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
        return np.asarray(self.pipeline(images=images)["images"])


def _albumentations_fn(pipeline) -> Albumentations | None:
    """None when the pipeline is empty (augmentation=none)."""
    if pipeline is None or len(getattr(pipeline, "transforms", [1])) == 0:
        return None
    return Albumentations(pipeline)


class SequenceDataModule(pl.LightningDataModule):
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
        # data.batch_size is the global batch: with N training processes each draws 1/N of it
        world, rank = (
            (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
        )
        if self.batch_size % world:
            raise ValueError(
                f"data.batch_size={self.batch_size}: must divide evenly over {world} processes"
            )
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

    def _loader(self, dataset, **kwargs) -> DataLoader:
        return DataLoader(dataset, batch_size=None, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, **kwargs)  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set)

    def val_dataloader(self) -> DataLoader:
        return self._loader(FixedBatches(self.val_set, self.eval_batch_size))

    def test_dataloader(self) -> DataLoader:
        return self._loader(FixedBatches(self.test_set, self.eval_batch_size))
