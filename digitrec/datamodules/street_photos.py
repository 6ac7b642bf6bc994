"""The detector's data: real street photos (curtin_numbers, CC BY 4.0) with every digit boxed,
real SVHN images, and photo scenes (numbers rendered into real photos, SYNTHETIC).

Training streams `crop` x `crop` views (digitrec.data.photo_augment: zoomed so digits are
`digit_px` high, turned, cropped around a number, relit) of the training photos — a share
`synthetic` of them first given 1-3 rendered numbers and some words (digitrec.data.photo_scenes)
on a training photo, a real SVHN wall or clutter. Real numbers' digit boxes split the number's box
evenly (curtin labels whole numbers). Validation holds out whole numbers of `train/` (about
`val_size` photos, by `split_seed`: the buildings in it are never trained on); `test/` is measured,
never trained or tuned on. Evaluation photos are letterboxed whole to `size`.

Batches: `image` (B, 3, S, S) uint8, `digits` (B, max_digits, 5) class, x0, y0, x1, y1 in input
pixels (class -1: ignored), `n_digits` (B,); training batches add the digit classifier's crops
(`digit_crop` x `digit_crop`, cut from each photo at its full resolution: its digits, boxes
jittered, and boxes without a digit; digitrec.data.photo_augment.crop_samples) as `crops`
(N, 3, c, c) uint8 and `crop_labels` (N,) (10: no digit); evaluation batches add `boxes` (B, max_boxes, 4) the
numbers' boxes, `count` (B,), and `answer`: the photo's one number (digits only, read with
confidence), "" for a photo without a number, "?" when neither.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from digitrec.data.photo_augment import crop_samples, relight, view
from digitrec.data.photo_scenes import Labelled, scene, svhn_wall
from digitrec.data.scenes import clutter
from digitrec.data.street_photos import Photo, labelled, letterbox, read_split, svhn_labelled
from digitrec.datamodules.base import (
    BatchDataModule,
    SeededStream,
    WholeBatches,
    check_square_rgb,
    refuse_augmentation,
)
from digitrec.datamodules.sequences import _albumentations_fn


def answer(photo: Photo) -> str:
    """What a reader should answer for a photo: its one number (digits only, read with
    confidence), "" for a photo without a number, "?" when neither is true."""
    if not photo.numbers:
        return ""
    if len(photo.numbers) == 1:
        n = photo.numbers[0]
        if n.confident and not n.has_letter and n.number.isdigit():
            return n.number
    return "?"


def _pad(rows: list[np.ndarray], width: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    padded = np.full((len(rows), width, cols), -1, np.float32)
    count = np.zeros(len(rows), np.int64)
    for i, r in enumerate(rows):
        r = r[:width]
        padded[i, : len(r)], count[i] = r, len(r)
    return torch.from_numpy(padded), torch.from_numpy(count)


def _images(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.stack(images))).permute(0, 3, 1, 2)


def split_by_number(photos: list[Photo], val_size: int, seed: int) -> tuple[list[int], list[int]]:
    """(validation, training) indices: whole numbers held out (every photo showing one of them),
    in a seeded order, until about `val_size` photos; photos without a number are held out in the
    same share."""
    if not 1 <= val_size < len(photos):
        raise ValueError(f"data.val_size={val_size}: expected 1..{len(photos) - 1}")
    numbers = sorted({n.number for p in photos for n in p.numbers})
    negatives = [i for i, p in enumerate(photos) if not p.numbers]
    rng = np.random.default_rng(seed)
    share = val_size / len(photos)
    held, n_val = set(), 0
    for k in rng.permutation(len(numbers)):
        if n_val >= val_size * (1 - len(negatives) / len(photos)):
            break
        held.add(numbers[k])
        n_val = sum(1 for p in photos if any(n.number in held for n in p.numbers))
    neg_val = set(rng.permutation(negatives)[: round(len(negatives) * share)].tolist())
    val = [
        i for i, p in enumerate(photos) if i in neg_val or any(n.number in held for n in p.numbers)
    ]
    taken = set(val)
    return val, [i for i in range(len(photos)) if i not in taken]


class EvalPhotos(WholeBatches):
    """Photos letterboxed to `size`, served as whole batches (validation, test)."""

    def __init__(
        self, photos: list[Photo], size: int, batch_size: int, max_digits: int, max_boxes: int
    ):
        super().__init__(len(photos), batch_size)
        self.images, self.digits, self.boxes, self.answers = [], [], [], []
        for p in photos:
            item = labelled(p, max_side=4 * size)
            image, scale, (dx, dy) = letterbox(item.image, size)
            shift = np.array([dx, dy, dx, dy], np.float32)
            d = item.digits.copy()
            d[:, 1:] = d[:, 1:] * scale + shift
            boxes = np.array([b for _, b in item.numbers], np.float32).reshape(-1, 4)
            self.images.append(image)
            self.digits.append(d)
            self.boxes.append(boxes * scale + shift)
            self.answers.append(answer(p))
        self.max_digits, self.max_boxes = max_digits, max_boxes

    def batch(self, sl: slice) -> dict:
        digits, n_digits = _pad(self.digits[sl], self.max_digits, 5)
        boxes, count = _pad(self.boxes[sl], self.max_boxes, 4)
        return {
            "image": _images(self.images[sl]),
            "digits": digits,
            "n_digits": n_digits,
            "boxes": boxes,
            "count": count,
            "answer": list(self.answers[sl]),
        }


class ViewStream(SeededStream):
    """Training views, a fresh random draw each step (see the module's docstring)."""

    def __init__(
        self,
        items,
        walls,
        fonts,
        crop,
        batch_size,
        steps,
        synthetic,
        digit_px,
        max_digits,
        seed,
        rank=0,
        digit_crop=32,
        real_digits=(),
    ):
        self.items, self.walls, self.fonts, self.digit_crop = items, walls, fonts, digit_crop
        self.real_digits = list(real_digits)
        self.crop, self.batch_size, self.steps = crop, batch_size, steps
        self.synthetic, self.digit_px, self.max_digits = synthetic, tuple(digit_px), max_digits
        self.seed, self.rank = seed, rank

    def __len__(self) -> int:
        return self.steps

    def _item(self, rng: np.random.Generator) -> Labelled:
        item = self.items[int(rng.integers(len(self.items)))]
        if rng.random() >= self.synthetic:
            return item
        u = rng.random()
        if u < 0.25 and self.walls:
            background = svhn_wall(rng, self.walls, int(rng.integers(512, 1025)))
        elif u < 0.5:
            h, w = int(rng.integers(384, 1025)), int(rng.integers(384, 1025))
            background = Labelled(clutter(rng, h, w), np.zeros((0, 5), np.float32), ())
        else:
            background = item
        return scene(rng, background, self.fonts)

    def __iter__(self):
        workers, wid = self._worker()
        rng = self._rng
        for _ in range(wid, self.steps, workers):
            images, digits, crops, labels = [], [], [], []
            for _ in range(self.batch_size):
                item = self._item(rng)
                image, d = view(rng, item, self.crop, self.digit_px)
                images.append(relight(rng, image))
                digits.append(d)
                if self.digit_crop:  # the digit classifier's crops, at the item's resolution
                    c, lab = crop_samples(rng, item, size=self.digit_crop)
                    crops += [relight(rng, x) for x in c]
                    labels.append(lab)
                if self.digit_crop and self.real_digits:  # one real scene digit (Chars74K)
                    real = self.real_digits[int(rng.integers(len(self.real_digits)))]
                    c, lab = crop_samples(rng, real, positives=1, negatives=0, size=self.digit_crop)
                    crops += [relight(rng, x) for x in c]
                    labels.append(lab)
            d, n = _pad(digits, self.max_digits, 5)
            batch = {"image": _images(images), "digits": d, "n_digits": n}
            if self.digit_crop:
                size = self.digit_crop
                batch["crops"] = (
                    _images(crops) if crops else torch.zeros(0, 3, size, size, dtype=torch.uint8)
                )
                batch["crop_labels"] = torch.from_numpy(np.concatenate(labels))
            yield batch


class StreetPhotoDataModule(BatchDataModule):
    """Street photos with digit boxes for the detector (see the module's docstring)."""

    def __init__(
        self,
        root: str,
        svhn_root: str | None = None,
        size: int = 512,
        crop: int = 384,
        synthetic: float = 0.5,
        source_size: int = 1024,
        digit_px: tuple[float, float] = (8.0, 160.0),
        digit_crop: int = 32,
        chars74k_root: str | None = None,
        fonts_from: str | None = None,
        val_size: int = 75,
        split_seed: int = 0,
        train_size: int | None = None,
        test_size: int | None = None,
        steps_per_epoch: int | None = None,
        batch_size: int = 8,
        eval_batch_size: int = 16,
        max_digits: int = 64,
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
            "draws its own views (digitrec.data.photo_augment), boxes and all",
        )
        check_square_rgb(size, channels, height, width)
        for key, value in (("size", size), ("crop", crop)):
            if value % 32 or value <= 0:
                raise ValueError(f"data.{key}={value}: expected a positive multiple of 32")
        if not 0 <= synthetic <= 1:
            raise ValueError(f"data.synthetic={synthetic}: expected a share in [0, 1]")
        lo, hi = digit_px
        if not 0 < lo <= hi:
            raise ValueError(
                f"data.digit_px={list(digit_px)}: expected [low, high], 0 < low <= high"
            )
        self.root, self.svhn_root = Path(root), Path(svhn_root) if svhn_root else None
        self.size, self.crop, self.synthetic = size, crop, synthetic
        self.source_size, self.digit_px = source_size, (float(lo), float(hi))
        self.digit_crop = digit_crop
        self.chars74k_root, self.fonts_from = chars74k_root, fonts_from
        self.max_digits, self.max_boxes = max_digits, max_boxes
        self.val_size, self.split_seed, self.train_size = val_size, split_seed, train_size
        self.test_size, self.steps_per_epoch = test_size, steps_per_epoch
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.num_workers = seed, num_workers
        self.train_set = self.val_set = self.test_set = None

    def preprocessing(self) -> dict:
        return {"kind": "letterbox", "size": self.size}

    def run_tags(self) -> dict[str, str]:
        return {"synthetic_share": str(self.synthetic)} if self.synthetic else {}

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        from digitrec.data.chars74k import chars74k_digits
        from digitrec.data.fonts import font_files
        from digitrec.data.street.glyphs import find_fonts

        world, rank = self._processes()
        photos = read_split(self.root / "train")
        val, train = split_by_number(photos, self.val_size, self.split_seed)
        train = train[: self.train_size] if self.train_size else train
        items = [labelled(photos[i], self.source_size) for i in train]
        walls = None
        if self.svhn_root is not None:
            items += svhn_labelled(self.svhn_root, "train")
            walls = str(self.svhn_root / "train")
        steps = self.steps_per_epoch or max(1, len(items) // self.batch_size)
        fetched = font_files(self.fonts_from) if self.fonts_from else []
        real_digits = (
            chars74k_digits(self.chars74k_root) if self.chars74k_root and self.digit_crop else []
        )
        self.train_set = ViewStream(
            items,
            walls,
            find_fonts(fetched) if self.synthetic else [],
            self.crop,
            self.batch_size // world,
            steps,
            self.synthetic,
            self.digit_px,
            self.max_digits,
            self.seed,
            rank,
            self.digit_crop,
            real_digits,
        )
        self.val_set = EvalPhotos(
            [photos[i] for i in val],
            self.size,
            self.eval_batch_size,
            self.max_digits,
            self.max_boxes,
        )
        test = read_split(self.root / "test")[: self.test_size]
        self.test_set = EvalPhotos(
            test, self.size, self.eval_batch_size, self.max_digits, self.max_boxes
        )

    def n_test(self) -> int:
        return self.test_set.n if self.test_set is not None else 0

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set)
