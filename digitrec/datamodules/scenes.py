"""The localizer's data: whole SVHN images composed into cluttered scenes (digitrec.data.scenes)
with the union box of the number to find."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from digitrec.data import scenes, svhn
from digitrec.datamodules.base import (
    BatchDataModule,
    DatasetInfo,
    SeededStream,
    WholeBatches,
    batch_schema,
    check_square_rgb,
    held_out,
    refuse_augmentation,
)
from digitrec.datamodules.sequences import _albumentations_fn
from digitrec.datamodules.svhn import rendered_tags, svhn_name, svhn_source


def _scene_batch(
    sources: dict[str, np.ndarray],
    idx: np.ndarray,
    size: int,
    rng: np.random.Generator,
    whole: float,
    zoomed: float,
    scale,
    aspect,
) -> dict:
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
            images[j], moved = scenes.compose(
                rng, src, box, tuple(sources["size"][i]), (size, size), rng.uniform(*aspect), scale
            )
            boxes[j] = moved[0]
    return {
        "image": torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        "box": torch.from_numpy(np.clip(boxes / size, 0, 1)),
    }


class SceneStream(SeededStream):
    """Endless freshly composed scene batches; an epoch is one pass over the sources' count."""

    def __init__(
        self, sources, size, batch_size, seed, whole, zoomed, scale, aspect, rank: int = 0
    ):
        self.sources, self.size, self.batch_size, self.seed = sources, size, batch_size, seed
        self.mix, self.rank = (whole, zoomed, scale, aspect), rank

    def __len__(self) -> int:
        return max(1, len(self.sources["box"]) // self.batch_size)

    def __iter__(self):
        workers, wid = self._worker()
        for _ in range(wid, len(self), workers):
            idx = self._rng.integers(0, len(self.sources["box"]), self.batch_size)
            yield _scene_batch(self.sources, idx, self.size, self._rng, *self.mix)


class FixedScenes(WholeBatches):
    """Scenes composed once (a fixed seed) for validation and testing, served as batches."""

    def __init__(self, sources, size, batch_size, seed, whole, zoomed, scale, aspect):
        rng = np.random.default_rng(seed)
        batch = _scene_batch(
            sources, np.arange(len(sources["box"])), size, rng, whole, zoomed, scale, aspect
        )
        super().__init__(len(batch["box"]), batch_size)
        self.images, self.box = batch["image"], batch["box"]

    def batch(self, sl: slice) -> dict[str, torch.Tensor]:
        return {"image": self.images[sl], "box": self.box[sl]}


class SceneDataModule(BatchDataModule):
    """The localizer's data: whole images of an SVHN format-1 root (real or the rendered stand-in),
    cached once at `source_size` (squashed squares that remember their real size), composed into
    `size` x `size` scenes: a fraction `whole` as they are, a fraction `zoomed` as the views around
    the number that the photo reader's later looks see, the rest pasted at a random place and a
    width of `scale` of a cluttered scene (digitrec.data.scenes). Validation holds out
    `val_size` train images; the test scenes come from the test split. Batches: uint8 images
    (B, 3, size, size) and union boxes (B, 4), normalized x0, y0, x1, y1."""

    def __init__(
        self,
        root: str,
        size: int = 128,
        source_size: int = 96,
        whole: float = 0.25,
        zoomed: float = 0.0,
        scale: Sequence[float] = scenes.SCALE,
        aspect: Sequence[float] = (0.6, 1.8),
        val_size: int = 2000,
        split_seed: int = 0,
        train_size: int | None = None,
        test_size: int | None = 2000,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        seed: int = 0,
        num_workers: int = 0,
        download: bool = True,
        cache_workers: int = 2,
        augmentation=None,
        channels: int = 3,
        height: int = 128,
        width: int = 128,
    ):
        super().__init__()
        refuse_augmentation(
            _albumentations_fn(augmentation),
            "scenes",
            "draws its own variety (zoom, scale, aspect, backgrounds) and applies no "
            "albumentations pipeline",
        )
        check_square_rgb(size, channels, height, width)
        mix_ok = 0 <= whole and 0 <= zoomed and whole + zoomed <= 1
        if not mix_ok or not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(
                f"data.whole={whole}, data.zoomed={zoomed}, data.scale={list(scale)}:"
                " expected probabilities summing to at most 1 and 0 < low <= high"
                " <= 1"
            )
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

    def preprocessing(self) -> dict:
        return {"kind": "square", "size": self.size}

    def run_tags(self) -> dict[str, str]:
        return rendered_tags(self.rendered)

    def prepare_data(self) -> None:
        for split in ("train", "test"):
            svhn.build_cache(self.root, split, self.pre, self.download, self.cache_workers)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        world, rank = self._processes()
        keys = ("images", "box", "size")
        caches = {
            s: svhn.load_cache(
                svhn.build_cache(self.root, s, self.pre, self.download, self.cache_workers)
            )
            for s in ("train", "test")
        }
        self.rendered = caches["train"]["rendered"]
        n = len(caches["train"]["box"])
        val, train = held_out(
            n, self.val_size, self.split_seed, self.train_size, min_val=1, pool=f"train has {n}"
        )
        pick = lambda d, i: {k: d[k][i] for k in keys}  # noqa: E731
        args = (self.whole, self.zoomed, self.scale, self.aspect)
        self.train_set = SceneStream(
            pick(caches["train"], train),
            self.size,
            self.batch_size // world,
            self.seed,
            *args,
            rank,
        )
        self.val_set = FixedScenes(
            pick(caches["train"], val), self.size, self.eval_batch_size, self.split_seed + 1, *args
        )
        test = caches["test"]
        m = min(self.test_size or len(test["box"]), len(test["box"]))
        self.test_set = FixedScenes(
            pick(test, np.arange(m)), self.size, self.eval_batch_size, self.split_seed + 2, *args
        )

    def describe_datasets(self) -> list[DatasetInfo]:
        """Training, validation and test scenes as dataset inputs of the run (after setup)."""
        mix = {
            "size": self.size,
            "whole": self.whole,
            "zoomed": self.zoomed,
            "scale": list(self.scale),
            "aspect": list(self.aspect),
            "source_preprocessing": {**asdict(self.pre), "key": self.pre.key},
        }
        held = {"val_size": self.val_size, "split_seed": self.split_seed}
        configs = {
            "training": {
                **mix,
                "held_out": held,
                "train_size": self.train_size,
                "seed": self.seed,
                "fresh_scenes_each_epoch": True,
            },
            "validation": {**mix, "held_out": held, "seed": self.split_seed + 1},
            "test": {**mix, "test_size": self.test_size, "seed": self.split_seed + 2},
        }
        sizes = {
            "training": len(self.train_set) * self.batch_size if self.train_set else None,
            "validation": self.val_set.n if self.val_set else None,
            "test": self.test_set.n if self.test_set else None,
        }
        schema = batch_schema(3, self.size, self.size, {"box": ("float32", [-1, 4])})
        name = f"{svhn_name(self.rendered)}-scenes"
        return [
            DatasetInfo(
                f"{name}-{short}",
                context,
                {
                    **svhn_source(
                        self.root,
                        ["test" if context == "test" else "train"],
                        self.pre,
                        self.rendered,
                    ),
                    "composed": "pasted into SYNTHETIC clutter (digitrec.data.scenes)",
                },
                configs[context],
                sizes[context],
                schema,
            )
            for context, short in (("training", "train"), ("validation", "val"), ("test", "test"))
        ]

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set)
