"""The detector task: a CenterNet that finds every number in a whole photo (digitrec.models.detector).

Loss: the penalty-reduced focal loss on the center map + L1 on the log sizes and offsets at the
centers (`size_weight`, `offset_weight`). Metrics: recall and precision of number boxes at IoU 0.5
(`recall50`, `precision50`, `f1`) for the boxes scored over `threshold`, and the loss.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from digitrec.models.detector import CenterNet, decode, encode, focal_loss, match
from digitrec.plots import detection_grid
from digitrec.tasks.base import TaskModule, to_input


class NumberDetector(TaskModule):
    """Trains and evaluates a CenterNet on photos with number boxes (data=street_photos)."""

    task = "detector"
    headline_metrics = {
        "test/recall50": "test recall, IoU 0.5",
        "test/precision50": "test precision, IoU 0.5",
    }

    def __init__(
        self,
        size_weight: float = 0.1,
        offset_weight: float = 1.0,
        threshold: float = 0.3,
        optimizer: partial | None = None,
        scheduler: partial | None = None,
        **net: Any,
    ):
        super().__init__(optimizer, scheduler)
        if size_weight < 0 or offset_weight < 0 or not 0 < threshold < 1:
            raise ValueError(
                f"model.size_weight={size_weight}, model.offset_weight={offset_weight}, "
                f"model.threshold={threshold}: expected weights >= 0 and 0 < threshold < 1"
            )
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.net = CenterNet(**net)

    def default_preprocessing(self) -> dict[str, Any]:
        return {"kind": "letterbox", "size": int(self.net.input_shape[-1])}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(to_input(images))

    @staticmethod
    def _boxes(batch: dict) -> list[torch.Tensor]:
        return [b[: int(n)] for b, n in zip(batch["boxes"], batch["count"], strict=True)]

    def loss(self, maps: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
        t = {
            k: v.to(maps.device)
            for k, v in encode([b.cpu() for b in boxes], maps.shape[-1]).items()
        }
        mask, n = t["mask"], t["mask"].sum().clamp(min=1)
        size = F.l1_loss(maps[:, 1:3].float() * mask, t["size"] * mask, reduction="sum") / n
        offset = F.l1_loss(maps[:, 3:5].float() * mask, t["offset"] * mask, reduction="sum") / n
        heat = focal_loss(maps[:, :1], t["heat"])
        return heat + self.hparams.size_weight * size + self.hparams.offset_weight * offset

    def training_step(self, batch, batch_idx):
        loss = self.loss(self(batch["image"]), self._boxes(batch))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["image"]))
        return loss

    def _collect(self, stage: str, batch) -> None:
        maps = self(batch["image"])
        true = self._boxes(batch)
        loss = float(self.loss(maps, true)) * len(true)
        pred = decode(maps, self.hparams.threshold)
        self._keep(stage, batch, ([p.cpu() for p in pred], [t.cpu() for t in true], loss))

    def _score(self, stage: str, outs: list) -> None:
        if not outs:
            return
        pred = [p for o in outs for p in o[0]]
        true = [t for o in outs for t in o[1]]
        hits = sum(match(p, t) for p, t in zip(pred, true, strict=True))
        n_true, n_pred = sum(len(t) for t in true), sum(len(p) for p in pred)
        recall, precision = hits / max(n_true, 1), hits / max(n_pred, 1)
        values = {
            "loss": sum(o[2] for o in outs) / len(true),
            "recall50": recall,
            "precision50": precision,
            "f1": 2 * recall * precision / (recall + precision) if recall + precision else 0.0,
            "boxes_per_photo": n_pred / len(true),
        }
        if stage == "test":
            self.test_predictions = {"pred": pred, "true": true}
        logged = {f"{stage}/{k}": float(v) for k, v in values.items()}
        self.log_dict(logged, prog_bar=False)
        self.log(f"{stage}/recall", values["recall50"], prog_bar=True, logger=False)

    def test_artifacts(self, datamodule, output_dir: Path) -> list[Path]:
        """Test photos with their true and detected boxes."""
        p = self.test_predictions
        if not p:
            return []
        images = datamodule.test_set.images[: len(p["pred"])].transpose(0, 3, 1, 2)
        return [detection_grid(images, p["true"], p["pred"], output_dir / "test_detections.png")]
