"""Synthetic numbers composed from a glyph pool (MNIST, notMNIST): a stream of fresh training
batches, fixed validation and test sets, and the albumentations glue the SVHN datamodule shares."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from digitrec.data import mnist, notmnist
from digitrec.data.sequences import (
    Sequences,
    SequenceSpec,
    compose,
    compose_mixture,
    layout_spec,
    split_pool,
)
from digitrec.datamodules.base import (
    BatchDataModule,
    DatasetInfo,
    SeededStream,
    WholeBatches,
    batch_schema,
    file_md5s,
)

# glyph pools: name → loader(data_dir, download=, verify=) → MNIST's four arrays
GLYPH_SOURCES = {"mnist": mnist.load_mnist, "notmnist": notmnist.load_notmnist}


def _as_batch(s: Sequences, sl: slice = slice(None)) -> dict[str, torch.Tensor]:
    return {
        "image": torch.from_numpy(s.images[sl]).unsqueeze(1),  # uint8 (B, 1, H, W)
        "length": torch.from_numpy(s.length[sl]),
        "digits": torch.from_numpy(s.digits[sl]),
        "box": torch.from_numpy(s.box[sl]),
    }


class SequenceStream(SeededStream):
    """An endless stream of freshly composed batches; one epoch = `batches_per_epoch` of them.
    `spec` is one layout, or layout families with weights [(spec, weight), ...].

    The generator state lives on in the process across epochs, so epochs never repeat data
    (use persistent workers when num_workers > 0).
    """

    def __init__(
        self,
        glyphs,
        labels,
        spec,
        batch_size,
        batches_per_epoch,
        seed,
        transform=None,
        transform_group: int = 1,
        rank: int = 0,
    ):
        self.glyphs, self.labels = glyphs, labels
        self.layouts = [(spec, 1.0)] if isinstance(spec, SequenceSpec) else list(spec)
        self.batch_size, self.batches_per_epoch, self.seed = batch_size, batches_per_epoch, seed
        self.rank = rank  # each training process (DDP rank) draws its own numbers
        self.transform, self.transform_group = transform, transform_group

    def _entropy(self, wid: int) -> list[int]:
        # rank 0 leaves its rank out: a single process draws what it drew before DDP
        return [self.seed, wid, *([self.rank] if self.rank else [])]

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self):
        workers, wid = self._worker()
        n = len(range(wid, self.batches_per_epoch, workers))
        for _ in range(n):
            s = compose_mixture(
                self.glyphs,
                self.labels,
                self.layouts,
                self.batch_size,
                self._rng,
                self.transform,
                self.transform_group,
            )
            yield _as_batch(s)


class FixedBatches(WholeBatches):
    """A fixed, pre-composed evaluation set served as whole batches."""

    def __init__(self, sequences: Sequences, batch_size: int):
        super().__init__(len(sequences), batch_size)
        self.sequences = sequences

    def batch(self, sl: slice) -> dict[str, torch.Tensor]:
        return _as_batch(self.sequences, sl)


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


def _layout_configs(layouts) -> list[dict]:
    """[(SequenceSpec, weight), ...] → the generator's settings, one dict a layout family."""
    return [{**dataclasses.asdict(spec), "weight": weight} for spec, weight in layouts]


class SequenceDataModule(BatchDataModule):
    """Synthetic numbers of `min_len`..`max_len` glyphs.

    Train and validation numbers are built from disjoint parts of the glyph source's train split
    (the last `val_glyphs` glyphs validate); test numbers only from its test split.
    `layouts` (name → SequenceSpec fields and a `weight`; conf/data/layouts/) are the layout
    families training and validation numbers are drawn from; the test set is the classic layout
    (`gap`, `jitter`). None: the classic layout only.
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
        layouts: dict | None = None,
        download: bool = True,
        verify: bool = True,
    ):
        super().__init__()
        if glyphs not in GLYPH_SOURCES:
            raise ValueError(f"data.glyphs={glyphs!r}: expected one of {sorted(GLYPH_SOURCES)}")
        if channels != 1:
            raise ValueError(f"data.channels={channels}: {glyphs} sequences are grayscale (1)")
        self.data_dir = Path(data_dir)
        try:  # the spec's errors name their keys under data.
            self.spec = SequenceSpec(
                max_len=max_len,
                min_len=min_len,
                height=height,
                width=width,
                length_probs=tuple(length_probs) if length_probs is not None else None,
                gap=(int(gap[0]), int(gap[1])),
                jitter=jitter,
            )
        except ValueError as e:
            raise ValueError(f"data.{e}") from None
        # training may weight lengths differently (more long numbers = more digits per image)
        try:
            self.train_spec = (
                self.spec
                if train_length_probs is None
                else dataclasses.replace(self.spec, length_probs=tuple(train_length_probs))
            )
        except ValueError as e:
            raise ValueError(f"data.train_{e} (data.max_len={max_len})") from None
        self.train_layouts = self._layouts(layouts, self.train_spec)
        self.val_layouts = self._layouts(layouts, self.spec)
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

    @staticmethod
    def _layouts(layouts: dict | None, base: SequenceSpec) -> list[tuple[SequenceSpec, float]]:
        """[(spec, weight), ...] from the layouts config; a bad family fails with its name."""
        if not layouts:
            return [(base, 1.0)]
        out = []
        for name, cfg in layouts.items():
            try:
                weight = float(dict(cfg).get("weight", 1.0))
                if weight < 0:
                    raise ValueError(f"weight={weight}: expected >= 0")
                out.append((layout_spec(base, cfg), weight))
            except (TypeError, ValueError) as e:
                raise ValueError(f"data.layouts.{name}: {e}") from None
        if sum(w for _, w in out) <= 0:
            raise ValueError("data.layouts: every weight is 0")
        return out

    # ------------------------------------------------------------------ what the run reads
    def glyph_source(self) -> dict:
        """The glyph pool's files and their md5s (MNIST: whether they are the official ones)."""
        directory = self.data_dir / self.glyphs
        if self.glyphs == "mnist":
            found = [mnist.find_idx(directory, spec) for spec in mnist.MNIST_FILES.values()]
            md5s = file_md5s(p for p in found if p is not None)
            official = {s.gz_md5 for s in mnist.MNIST_FILES.values()}
            official |= {s.raw_md5 for s in mnist.MNIST_FILES.values()}
            extra = {"official_md5s": bool(md5s) and set(md5s.values()) <= official}
        else:  # notMNIST: the converted cache, the archive or the idx sample, whichever is there
            names = [
                notmnist.CACHE,
                notmnist.ARCHIVE,
                *(f"{s.name}.gz" for s in notmnist.SAMPLE_FILES.values()),
            ]
            md5s, extra = file_md5s(directory / n for n in names), {}
        return {
            "uri": directory.resolve().as_uri(),
            "glyphs": self.glyphs,
            "files": md5s,
            "kind": f"synthetic numbers composed from {self.glyphs} glyphs",
            **extra,
        }

    def _schema(self) -> dict:
        return batch_schema(
            1,
            self.spec.height,
            self.spec.width,
            {
                "length": ("int64", [-1]),
                "digits": ("int64", [-1, self.spec.max_len]),
                "box": ("float32", [-1, 4]),
            },
        )

    def describe_datasets(self) -> list[DatasetInfo]:
        """The training stream, validation and test sets as dataset inputs of the run."""
        source, name, schema = self.glyph_source(), f"{self.glyphs}-numbers", self._schema()
        pools = {
            "training": f"train split but its last {self.val_glyphs} glyphs",
            "validation": f"the last {self.val_glyphs} glyphs of the train split",
            "test": "test split",
        }
        per_epoch = max(1, self.train_size // self.batch_size) * self.batch_size
        augmentation = (
            [type(t).__name__ for t in self.transform.pipeline.transforms] if self.transform else []
        )
        configs = {
            "training": {
                "layouts": _layout_configs(self.train_layouts),
                "seed": self.seed,
                "fresh_numbers_each_epoch": True,
                "augmentation": augmentation,
            },
            "validation": {"layouts": _layout_configs(self.val_layouts), "seed": [self.seed, 1]},
            "test": {"layouts": _layout_configs([(self.spec, 1.0)]), "seed": [self.seed, 2]},
        }
        sizes = {"training": per_epoch, "validation": self.val_size, "test": self.test_size}
        short = {"training": "train", "validation": "val", "test": "test"}
        return [
            DatasetInfo(
                f"{name}-{short[c]}", c, {**source, "pool": pools[c]}, configs[c], sizes[c], schema
            )
            for c in pools
        ]

    def describe_suites(self, suites) -> list[DatasetInfo]:
        """Evaluation suites (digitrec.data.suites) drawn from this glyph source's test split."""
        source = {**self.glyph_source(), "pool": "test split"}
        return [
            DatasetInfo(
                f"suite-{s.name}",
                "evaluation",
                source,
                {
                    "layouts": _layout_configs([(s.spec, 1.0)]),
                    "seed": s.seed,
                    "description": s.description,
                },
                s.n,
                self._schema(),
            )
            for s in suites
        ]

    def preprocessing(self) -> dict:
        return {
            "kind": "whole",
            "channels": 1,
            "height": self.spec.height,
            "width": self.spec.width,
        }

    def suite_glyphs(self):
        data = self.load_glyphs()
        return data["test_images"], data["test_labels"], self.spec

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
            tr_x,
            tr_y,
            self.train_layouts,
            self.batch_size // world,
            max(1, self.train_size // self.batch_size),
            self.seed,
            self.transform,
            self.augment_group,
            rank,
        )
        self.val_set = compose_mixture(
            va_x, va_y, self.val_layouts, self.val_size, np.random.default_rng([self.seed, 1])
        )
        self.test_set = compose(
            data["test_images"],
            data["test_labels"],
            self.spec,
            self.test_size,
            np.random.default_rng([self.seed, 2]),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set)

    def val_dataloader(self) -> DataLoader:
        return self._loader(FixedBatches(self.val_set, self.eval_batch_size))

    def test_dataloader(self) -> DataLoader:
        return self._loader(FixedBatches(self.test_set, self.eval_batch_size))
