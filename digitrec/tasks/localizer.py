"""The localizer task: a BoxNet trained to put one box around the number in a square image."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from digitrec.models.localizer import BoxNet, box_iou
from digitrec.plots import box_grid
from digitrec.tasks.base import TaskModule, to_input


class BoxLocalizer(TaskModule):
    """Trains and evaluates a BoxNet: `l1_weight` x L1 + `giou_weight` x (1 - GIoU) on normalized
    union boxes; metrics mean IoU and the fraction of boxes with IoU >= 0.5 (`iou50`)."""

    task = "localizer"
    headline_metrics = {"test/mean_iou": "test mean IoU", "test/iou50": "test boxes IoU >= 0.5"}

    def __init__(
        self,
        l1_weight: float = 5.0,
        giou_weight: float = 2.0,
        optimizer: partial | None = None,
        scheduler: partial | None = None,
        **net: Any,
    ):
        super().__init__(optimizer, scheduler)
        if l1_weight < 0 or giou_weight < 0 or l1_weight + giou_weight == 0:
            raise ValueError(
                f"model.l1_weight={l1_weight}, model.giou_weight={giou_weight}: "
                "expected non-negative weights, not both 0"
            )
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.net = BoxNet(**net)

    def default_preprocessing(self) -> dict[str, Any]:
        return {"kind": "square", "size": int(self.net.input_shape[-1])}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(to_input(images))

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        l1 = F.l1_loss(pred, target, reduction="none").sum(1)
        giou = 1 - box_iou(pred, target, generalized=True)
        return (self.hparams.l1_weight * l1 + self.hparams.giou_weight * giou).mean()

    def training_step(self, batch, batch_idx):
        loss = self.loss(self(batch["image"]), batch["box"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["box"]))
        return loss

    def _collect(self, stage: str, batch) -> None:
        self._keep(stage, batch, (self(batch["image"]).detach().cpu(), batch["box"].cpu()))

    def _score(self, stage: str, outs: list) -> None:
        if not outs:
            return
        pred, target = torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])
        iou = box_iou(pred, target)
        values = {
            "loss": float(self.loss(pred, target)),
            "mean_iou": float(iou.mean()),
            "iou50": float((iou >= 0.5).float().mean()),
        }
        if stage == "test":
            self.test_predictions = {"box": pred, "target": target, "iou": iou}
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()})
        self.log(f"{stage}/iou", values["mean_iou"], prog_bar=True, logger=False)

    def test_artifacts(self, datamodule, output_dir: Path) -> list[Path]:
        """The test images with their true and predicted boxes."""
        p = self.test_predictions
        if not p:
            return []
        grid = box_grid(
            datamodule.test_set.images,
            p["target"].numpy(),
            p["box"].numpy(),
            p["iou"].numpy(),
            output_dir / "test_boxes.png",
        )
        return [grid]
