"""What the datamodules share: training streams seeded per worker and per rank, fixed evaluation
sets served as whole batches, the held-out validation split, and the global batch size split over
the training processes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info


class SeededStream(IterableDataset):
    """A training stream whose numbers come from a generator of its own in each DataLoader worker
    of each training process (DDP rank), made on the first epoch and kept, so epochs never repeat
    data (use persistent workers when num_workers > 0). A `transform` with a generator of its own
    (`reseed`, e.g. Albumentations) is seeded from the stream's."""

    seed: int
    rank: int = 0
    transform = None
    _rng: np.random.Generator | None = None

    def _entropy(self, wid: int) -> list[int]:
        """The seed sequence of worker `wid`'s generator."""
        return [self.seed, wid, self.rank]

    def _worker(self) -> tuple[int, int]:
        """(number of workers, this one's id), (1, 0) without workers; seeds the generator (and
        the transform) on the first call."""
        info = get_worker_info()
        workers, wid = (info.num_workers, info.id) if info else (1, 0)
        if self._rng is None:
            self._rng = np.random.default_rng(self._entropy(wid))
            if hasattr(self.transform, "reseed"):  # its own generator, drawn from this stream's
                self.transform.reseed(int(self._rng.integers(2**31)))
        return workers, wid


class WholeBatches(Dataset):
    """A fixed evaluation set of `n` items served as whole batches of `batch_size` (the last one
    may be short); subclasses make the batch of a slice of the items."""

    def __init__(self, n: int, batch_size: int):
        self.n, self.batch_size = n, batch_size

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        batch = self.batch(slice(i * self.batch_size, (i + 1) * self.batch_size))
        # which batch of the set it is: under DDP each process evaluates a share of the batches
        # (a distributed sampler pads the shares with repeats) and the tasks gather them by it
        batch["index"] = torch.tensor(i)
        return batch

    def batch(self, sl: slice) -> dict[str, torch.Tensor]:
        raise NotImplementedError


def held_out(
    n: int, val_size: int, split_seed: int, train_size: int | None, *, min_val: int, pool: str
) -> tuple[np.ndarray, np.ndarray]:
    """(validation, training) indices into a pool of `n` images, each sorted: `val_size` of them
    held out by a permutation seeded `split_seed`, the rest train (the first `train_size` of them,
    when given). `val_size` must be `min_val`..n - 1; `pool` describes the pool in the error."""
    if not min_val <= val_size < n:
        raise ValueError(f"data.val_size={val_size}: expected {min_val}..{n - 1} ({pool})")
    order = np.random.default_rng(split_seed).permutation(n)
    val, train = np.sort(order[:val_size]), np.sort(order[val_size:])
    if train_size:
        train = train[:train_size]
    return val, train


class BatchDataModule(pl.LightningDataModule):
    """What all datamodules share: datasets that yield whole batches, and a global batch size
    split evenly over the training processes."""

    batch_size: int
    num_workers: int
    test_set = None  # the fixed test set once set up (it has `box`: one per image)

    # what digitrec.training.train asks of every datamodule, without knowing which one it is
    def preprocessing(self) -> dict:
        """How a model's inputs are made from an image (stored in its checkpoints, read by
        inference): e.g. {"kind": "crop", "expand": 0.3, "image_size": 64, "crop": 54}."""
        return {}

    def run_tags(self) -> dict[str, str]:
        """Tags for the run (e.g. that the data is a rendered SYNTHETIC stand-in)."""
        return {}

    def suite_glyphs(self) -> tuple[np.ndarray, np.ndarray, object] | None:
        """(glyph images, labels, canvas SequenceSpec): the glyph test split the evaluation
        suites (conf/eval/) are drawn from and the canvas they are drawn on; None when the data
        has no suites."""
        return None

    def n_test(self) -> int:
        """Images in the test set (0 before setup)."""
        return len(self.test_set.box) if self.test_set is not None else 0

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
        return DataLoader(
            dataset,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )


def check_square_rgb(size: int, channels: int, height: int, width: int) -> None:
    """data.channels/height/width (which the model config reads) must be RGB data.size squares."""
    if (height, width) != (size, size) or channels != 3:
        raise ValueError(
            f"data.height={height}, data.width={width}, data.channels={channels}: "
            f"expected {size}, {size}, 3 (data.size)"
        )


def refuse_augmentation(transform, data: str, why: str) -> None:
    """A datamodule with boxes takes no albumentations pipeline (the boxes would have to move
    with it): a non-empty one is an error, not silently dropped."""
    if transform is not None:
        raise ValueError(f"augmentation: data={data} {why}; use augmentation=none")


@dataclasses.dataclass
class DatasetInfo:
    """What a run read, without its arrays: logged as an MLflow dataset input (its Datasets
    column). `context` training | validation | test | evaluation; `source` where the data comes
    from (uri, kind, files and their md5s, split, cache); `config` how the set is made from it
    (generator, preprocessing, selection); `size` its images (per epoch for a training stream);
    `schema` its arrays as name → (dtype, shape), -1 for any size."""

    name: str
    context: str
    source: dict
    config: dict
    size: int | None = None
    schema: dict = dataclasses.field(default_factory=dict)

    @property
    def digest(self) -> str:
        """A fingerprint of the source's files and the config (not of the arrays)."""
        blob = json.dumps([self.source, self.config, self.size], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


def file_md5s(paths) -> dict[str, str]:
    """name → md5 of each existing file (read in blocks)."""
    out = {}
    for path in map(Path, paths):
        if path.is_file():
            digest = hashlib.md5()
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            out[path.name] = digest.hexdigest()
    return out


def batch_schema(channels: int, height: int, width: int, labels: dict) -> dict:
    """A batch's arrays: uint8 images (-1, C, H, W) and the `labels` name → (dtype, shape)."""
    return {"image": ("uint8", [-1, channels, height, width]), **labels}


_BatchDataModule = BatchDataModule  # the name it had in digitrec/datamodules.py
