"""The LightningModule: loss, joint decode, metrics and optimizers around a DigitNet."""

from __future__ import annotations

import inspect
from collections import defaultdict
from functools import partial
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from digitrec import decode
from digitrec.models import DigitNet
from digitrec.models.localizer import BoxNet, box_iou

LOSSES = ("mask", "blank")


def to_input(images: torch.Tensor, mean_subtract: bool = False) -> torch.Tensor:
    """uint8 images (B, H, W) or (B, C, H, W) → float (B, C, H, W) in [0, 1]; with
    `mean_subtract`, minus each image's mean (the paper's SVHN preprocessing)."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    x = images.float().div_(255) if images.dtype == torch.uint8 else images.float()
    return x - x.mean(dim=(1, 2, 3), keepdim=True) if mean_subtract else x


class _Trainable(pl.LightningModule):
    """Optimizer and schedule from Hydra partials (`_partial_: true`), completed here; not saved
    in checkpoints (a checkpoint rebuilds the network without Hydra)."""

    def __init__(self, optimizer: partial | None, scheduler: partial | None):
        super().__init__()
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self._eval: dict[str, list] = defaultdict(list)  # per-stage batch outputs
        self.test_predictions: dict[str, torch.Tensor] = {}  # the last test epoch's, for plots

    # evaluation: subclasses collect per batch (`_eval_step`) and score the epoch (`_eval_end`)
    def validation_step(self, batch, batch_idx):
        self._eval_step("val", batch)

    def on_validation_epoch_end(self):
        self._eval_end("val")

    def test_step(self, batch, batch_idx):
        self._eval_step("test", batch)

    def on_test_epoch_end(self):
        self._eval_end("test")

    def configure_optimizers(self):
        if self.optimizer_factory is None:
            raise ValueError("no optimizer configured (pass optimizer=partial(torch.optim.X, ...))")
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        kwargs = {}
        func = getattr(self.scheduler_factory, "func", self.scheduler_factory)
        given = getattr(self.scheduler_factory, "keywords", {})
        if "total_steps" in inspect.signature(func).parameters and "total_steps" not in given:
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer=optimizer, **kwargs)
        # Every schedule here is stepped per batch (the notebooks' exponential decay counts steps).
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


class DigitReader(_Trainable):
    """Trains and evaluates a DigitNet.

    `**net` are DigitNet's plain arguments (depth, widths, head, ...), saved in the checkpoint with
    `loss`, so `DigitReader.load_from_checkpoint(path)` needs no Hydra; `optimizer` and `scheduler`
    are partials (Hydra `_partial_: true`) completed in `configure_optimizers`, and not saved.
    `loss="mask"` gives absent positions no gradient (the paper); `loss="blank"` trains them
    to predict an extra blank class (the seed notebooks). `label_smoothing` (training only)
    spreads that share of every target over the other classes. `mean_subtract` (the paper's per-image
    mean subtraction) is applied in `forward`, so a checkpoint says how to feed it raw pixels.
    """

    def __init__(
        self,
        loss: str = "mask",
        mean_subtract: bool = False,
        label_smoothing: float = 0.0,
        optimizer: partial | None = None,
        scheduler: partial | None = None,
        **net: Any,
    ):
        super().__init__(optimizer, scheduler)
        if loss not in LOSSES:
            raise ValueError(f"model.loss={loss!r}: expected one of {LOSSES}")
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"model.label_smoothing={label_smoothing}: expected 0 <= value < 1")
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.net = DigitNet(**net, blank=loss == "blank")
        self.mean_subtract = mean_subtract
        self.max_len = self.net.max_len

    def forward(
        self, images: torch.Tensor, teacher: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(to_input(images, self.mean_subtract), teacher)

    @torch.no_grad()
    def read(self, images: torch.Tensor) -> decode.Decoded:
        """Decode a batch of images (eval mode is the caller's business: see `predict`)."""
        return decode.joint_decode(*self(images))

    def loss(self, length_logits, digit_logits, length, digits) -> torch.Tensor:
        """-log P(number | image) averaged over the batch: length term + one term per position."""
        B = len(length)
        smooth = self.hparams.get("label_smoothing", 0.0) if self.training else 0.0
        loss = F.cross_entropy(
            length_logits,
            length.clamp(max=self.max_len + 1),
            reduction="sum",
            label_smoothing=smooth,
        )
        if self.hparams.loss == "blank":
            digits = torch.where(digits >= 0, digits, torch.full_like(digits, 10))
        loss = loss + F.cross_entropy(
            digit_logits.reshape(-1, digit_logits.shape[-1]),
            digits.reshape(-1),
            ignore_index=decode.PAD,
            reduction="sum",
            label_smoothing=smooth,
        )
        return loss / B

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        # teacher forcing for recurrent heads; evaluation feeds back their own predictions
        length_logits, digit_logits = self(batch["image"], teacher=batch["digits"])
        loss = self.loss(length_logits, digit_logits, batch["length"], batch["digits"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["length"]))
        return loss

    # ---------------------------------------------------------------------------- evaluation
    def _eval_step(self, stage: str, batch: dict[str, torch.Tensor]) -> None:
        length_logits, digit_logits = self(batch["image"])
        loss = self.loss(length_logits, digit_logits, batch["length"], batch["digits"])
        out = self._eval[stage]
        out.append(
            (
                decode.joint_decode(length_logits, digit_logits),
                digit_logits.detach().cpu(),
                batch["length"].cpu(),
                batch["digits"].cpu(),
                loss.detach().cpu() * len(batch["length"]),
            )
        )

    def _eval_end(self, stage: str) -> dict[str, float]:
        outs = self._eval.pop(stage, [])
        if not outs:
            return {}
        decoded = decode.Decoded(
            torch.cat([o[0].length.cpu() for o in outs]),
            torch.cat([o[0].digits.cpu() for o in outs]),
            torch.cat([o[0].confidence.cpu() for o in outs]),
        )
        digit_logits, length, digits = (torch.cat([o[i] for o in outs]) for i in (1, 2, 3))
        values = decode.metrics(decoded, digit_logits, length, digits)
        values["loss"] = float(sum(o[4] for o in outs) / len(length))
        if stage == "test":
            self.test_predictions = {
                "length": decoded.length,
                "digits": decoded.digits,
                "confidence": decoded.confidence,
                "correct": decode.sequence_correct(decoded, length, digits),
            }
        logged = {f"{stage}/{k}": v for k, v in values.items()}
        # under DDP every rank evaluates the whole set (trainer=ddp), so the values agree and the
        # sync is a formality that keeps Lightning's epoch-level logging consistent
        self.log_dict(logged, prog_bar=False, sync_dist=True)
        self.log(f"{stage}/seq_acc", values["sequence_accuracy"], prog_bar=True, logger=False)
        return logged


class BoxLocalizer(_Trainable):
    """Trains and evaluates a BoxNet: `l1_weight` x L1 + `giou_weight` x (1 - GIoU) on normalized
    union boxes; metrics mean IoU and the fraction of boxes with IoU >= 0.5 (`iou50`)."""

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

    def _eval_step(self, stage: str, batch) -> None:
        pred = self(batch["image"])
        self._eval[stage].append((pred.detach().cpu(), batch["box"].cpu()))

    def _eval_end(self, stage: str) -> None:
        outs = self._eval.pop(stage, [])
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
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()}, sync_dist=True)
        self.log(f"{stage}/iou", values["mean_iou"], prog_bar=True, logger=False)
