"""The detector task: a CenterNet that finds and classifies every digit in a whole photo
(digitrec.models.detector), its digits grouped into candidate numbers (digitrec.models.grouping).

Loss: the penalty-reduced focal loss on the digit heat map (characters that are not digits, or not
read, ignored) + cross-entropy of the class logits at the centers (`class_weight`) + L1 on the log
sizes and offsets at the centers (`size_weight`, `offset_weight`).
Metrics: `read_accuracy` — photos whose one number is read exactly by the best candidate scoring
at least `answer_threshold` (the photo's answer); `false_answers` — the share of photos without a
number that get an answer; `recall50`/`precision50`/`f1` of the candidates' number boxes at IoU
0.5; `digit_recall` of digit boxes (class and IoU 0.5); and the loss.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from digitrec.models.detector import (
    CLASSES,
    CLS,
    HEAT,
    OFFSET,
    SIZE,
    CenterNet,
    DigitClassifier,
    decode,
    encode,
    focal_loss,
    match,
    reclassify,
    suppress,
)
from digitrec.models.grouping import group
from digitrec.plots import detection_grid
from digitrec.tasks.base import TaskModule, to_input


class NumberDetector(TaskModule):
    """Trains and evaluates a digit CenterNet on street photos (data=street_photos)."""

    task = "detector"
    headline_metrics = {
        "test/read_accuracy": "test read exactly",
        "test/false_answers": "test no-number answered",
        "test/recall50": "test box recall@0.5",
    }

    def __init__(
        self,
        size_weight: float = 0.1,
        offset_weight: float = 1.0,
        class_weight: float = 1.0,
        crop_weight: float = 1.0,
        crop_size: int = 0,
        crop_expand: float = 0.15,
        crop_width: int = 32,
        threshold: float = 0.3,
        answer_threshold: float = 0.5,
        overlap: float = 0.5,
        optimizer: partial | None = None,
        scheduler: partial | None = None,
        **net: Any,
    ):
        super().__init__(optimizer, scheduler)
        if min(size_weight, offset_weight, class_weight) < 0 or not 0 < threshold < 1:
            raise ValueError(
                f"model.size_weight={size_weight}, model.offset_weight={offset_weight}, "
                f"model.class_weight={class_weight}, model.threshold={threshold}: expected "
                "weights >= 0 and 0 < threshold < 1"
            )
        if crop_size and (crop_size % 8 or crop_size < 8):
            raise ValueError(f"model.crop_size={crop_size}: expected 0 (no classifier) or 8k")
        if not 0 < answer_threshold < 1:
            raise ValueError(f"model.answer_threshold={answer_threshold}: expected 0 < t < 1")
        if not 0 < overlap <= 1:
            raise ValueError(f"model.overlap={overlap}: expected 0 < overlap <= 1")
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.net = CenterNet(**net)
        # the digit classifier of full-resolution crops (crop_size 0: the CenterNet's classes)
        self.classifier = DigitClassifier(3, crop_width, crop_size) if crop_size else None
        self.test_predictions = None

    def default_preprocessing(self) -> dict[str, Any]:
        return {"kind": "letterbox", "size": int(self.net.input_shape[-1])}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(to_input(images))

    @staticmethod
    def _rows(batch: dict, key: str, count: str) -> list[torch.Tensor]:
        return [b[: int(n)] for b, n in zip(batch[key], batch[count], strict=True)]

    def loss(self, maps: torch.Tensor, digits: list[torch.Tensor]) -> torch.Tensor:
        h, w = maps.shape[-2:]
        t = {k: v.to(maps.device) for k, v in encode([d.cpu() for d in digits], h, w).items()}
        mask, n = t["mask"], t["mask"].sum().clamp(min=1)
        size = F.l1_loss(maps[:, SIZE].float() * mask, t["size"] * mask, reduction="sum") / n
        offset = F.l1_loss(maps[:, OFFSET].float() * mask, t["offset"] * mask, reduction="sum") / n
        heat = focal_loss(maps[:, HEAT : HEAT + 1], t["heat"], t["ignore"])
        cls = (
            F.cross_entropy(maps[:, CLS].float(), t["cls"], ignore_index=-100, reduction="sum") / n
        )
        hp = self.hparams
        return heat + hp.class_weight * cls + hp.size_weight * size + hp.offset_weight * offset

    def training_step(self, batch, batch_idx):
        loss = self.loss(self(batch["image"]), self._rows(batch, "digits", "n_digits"))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["image"]))
        if self.classifier is not None and len(batch["crop_labels"]):
            logits = self.classifier(to_input(batch["crops"]))
            crop_loss = F.cross_entropy(logits.float(), batch["crop_labels"])
            self.log("train/crop_loss", crop_loss, batch_size=len(batch["crop_labels"]))
            loss = loss + self.hparams.crop_weight * crop_loss
        return loss

    def read_digits(self, found: torch.Tensor, image) -> torch.Tensor:
        """The CenterNet's digits (n, 7) of one image (H, W, 3 uint8 numpy) read again by the crop
        classifier (when there is one); then a digit overlapping a better one by IoU over
        `overlap` is dropped (one digit found twice, side by side)."""
        h = self.hparams
        found = reread(self.classifier, found, image, h.crop_size, h.crop_expand)
        return suppress(found, h.get("overlap", 0.5))

    def _collect(self, stage: str, batch) -> None:
        maps = self(batch["image"])
        digits = self._rows(batch, "digits", "n_digits")
        loss = float(self.loss(maps, digits)) * len(digits)
        images = batch["image"].permute(0, 2, 3, 1).cpu().numpy()
        found = [
            self.read_digits(f.cpu(), image)
            for f, image in zip(decode(maps, self.hparams.threshold), images, strict=True)
        ]
        boxes = [b.cpu() for b in self._rows(batch, "boxes", "count")]
        kept = (found, [d.cpu() for d in digits], boxes, list(batch["answer"]), loss)
        self._keep(stage, batch, kept)

    def _score(self, stage: str, outs: list) -> None:
        if not outs:
            return
        found = [f for o in outs for f in o[0]]
        digits = [d for o in outs for d in o[1]]
        boxes = [b for o in outs for b in o[2]]
        answers = [a for o in outs for a in o[3]]
        t = self.hparams.answer_threshold
        candidates = [[c for c in group(f) if c.score >= t] for f in found]
        read = [c[0].number if c else "" for c in candidates]
        numbered = [i for i, a in enumerate(answers) if a not in ("", "?")]
        empty = [i for i, a in enumerate(answers) if a == ""]
        cand_boxes = [
            torch.tensor([c.box for c in cs], dtype=torch.float32).reshape(-1, 4)
            for cs in candidates
        ]
        hits = sum(match(p, b) for p, b in zip(cand_boxes, boxes, strict=True))
        n_true, n_pred = sum(len(b) for b in boxes), sum(len(p) for p in cand_boxes)
        recall, precision = hits / max(n_true, 1), hits / max(n_pred, 1)
        digit_hits = sum(
            _class_match(f, d[d[:, 0] >= 0]) for f, d in zip(found, digits, strict=True)
        )
        n_digits = sum(int((d[:, 0] >= 0).sum()) for d in digits)
        values = {
            "loss": sum(o[4] for o in outs) / len(digits),
            "read_accuracy": sum(read[i] == answers[i] for i in numbered) / max(len(numbered), 1),
            "false_answers": sum(read[i] != "" for i in empty) / max(len(empty), 1),
            "recall50": recall,
            "precision50": precision,
            "f1": 2 * recall * precision / (recall + precision) if recall + precision else 0.0,
            "digit_recall": digit_hits / max(n_digits, 1),
        }
        if stage == "test":
            self.test_predictions = {"pred": cand_boxes, "true": boxes, "read": read}
        self.log_dict({f"{stage}/{k}": float(v) for k, v in values.items()}, prog_bar=False)
        self.log(f"{stage}/read", values["read_accuracy"], prog_bar=True, logger=False)

    def test_artifacts(self, datamodule, output_dir: Path) -> list[Path]:
        """Test photos with their true number boxes and the candidates found."""
        p = self.test_predictions
        if not p:
            return []
        images = torch.stack(
            [torch.from_numpy(i) for i in datamodule.test_set.images[: len(p["pred"])]]
        )
        images = images.permute(0, 3, 1, 2).numpy()
        return [detection_grid(images, p["true"], p["pred"], output_dir / "test_detections.png")]


@torch.no_grad()
def reread(classifier, found: torch.Tensor, image, size: int, expand: float) -> torch.Tensor:
    """Digits (n, 7) found in `image` (H, W, 3 uint8, the pixels their boxes are in) read again
    by `classifier` from crops cut there (digitrec.data.photo_augment.digit_crops); unchanged
    without a classifier."""
    if classifier is None or len(found) == 0:
        return found
    from digitrec.data.photo_augment import digit_crops

    crops = torch.from_numpy(digit_crops(image, found[:, :4].numpy(), size, expand))
    probs = torch.softmax(classifier(to_input(crops.permute(0, 3, 1, 2))).float(), 1)
    return reclassify(found, probs.cpu())


def _class_match(found: torch.Tensor, true: torch.Tensor) -> int:
    """Digits found with the right class at IoU >= 0.5 (each true digit once)."""
    hits = 0
    for c in range(CLASSES):
        f, t = found[found[:, 5] == c], true[true[:, 0] == c]
        if len(f) and len(t):
            hits += match(f, t[:, 1:5])
    return hits
