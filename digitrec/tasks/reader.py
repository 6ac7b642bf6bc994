"""The reader task: a DigitNet trained to read a whole number (length and digits) from an image."""

from __future__ import annotations

import io
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from digitrec.data.sequences import labels_to_string
from digitrec.io import atomic_write_bytes
from digitrec.models import DigitNet
from digitrec.models.config import LOSSES
from digitrec.plots import prediction_grid
from digitrec.tasks import decode
from digitrec.tasks.base import TaskModule, to_input

# an SVHN crop reader's recipe before checkpoints carried it (the paper's: union box + 30%,
# 64 x 64, center 54 x 54)
SVHN_CROP = {"kind": "crop", "expand": 0.3, "image_size": 64, "crop": 54}


class DigitReader(TaskModule):
    """Trains and evaluates a DigitNet.

    `**net` are DigitNet's plain arguments (depth, widths, head, ...), saved in the checkpoint with
    `loss`, so `DigitReader.load_from_checkpoint(path)` needs no Hydra; `optimizer` and `scheduler`
    are partials (Hydra `_partial_: true`) completed in `configure_optimizers`, and not saved.
    `loss="mask"` gives absent positions no gradient (the paper); `loss="blank"` trains them
    to predict an extra blank class (the seed notebooks). `label_smoothing` (training only)
    spreads that share of every target over the other classes. `mean_subtract` (the paper's
    per-image mean subtraction) is applied in `forward`, so a checkpoint says how to feed it raw
    pixels.
    """

    task = "reader"
    headline_metrics = {
        "test/sequence_accuracy": "test sequence accuracy",
        "test/coverage_at_98": "coverage at 98% acc.",
        "test/digit_accuracy": "per-digit accuracy",
    }

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

    def default_preprocessing(self) -> dict[str, Any]:
        channels, height, width = (int(v) for v in self.net.input_shape)
        if (channels, height, width) == (3, 54, 54):
            return dict(SVHN_CROP)
        return {"kind": "whole", "channels": channels, "height": height, "width": width}

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
    def _collect(self, stage: str, batch: dict[str, torch.Tensor]) -> None:
        length_logits, digit_logits = self(batch["image"])
        loss = self.loss(length_logits, digit_logits, batch["length"], batch["digits"])
        d = decode.joint_decode(length_logits, digit_logits)
        outputs = (d.length, d.digits, d.confidence, digit_logits, batch["length"], batch["digits"])
        self._keep(
            stage,
            batch,
            (*(o.detach().cpu() for o in outputs), float(loss) * len(batch["length"])),
        )

    def _score(self, stage: str, outs: list) -> None:
        if not outs:
            return
        cat = [torch.cat([o[i] for o in outs]) for i in range(6)]
        decoded = decode.Decoded(*cat[:3])
        digit_logits, length, digits = cat[3:]
        values = decode.metrics(decoded, digit_logits, length, digits)
        values["loss"] = sum(o[6] for o in outs) / len(length)
        if stage == "test":
            self.test_predictions = {
                "length": decoded.length,
                "digits": decoded.digits,
                "confidence": decoded.confidence,
                "correct": decode.sequence_correct(decoded, length, digits),
            }
        # every process scores the whole (gathered) set: the values agree, no reduction needed
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()})
        self.log(f"{stage}/seq_acc", values["sequence_accuracy"], prog_bar=True, logger=False)

    def test_artifacts(self, datamodule, output_dir: Path) -> list[Path]:
        """The test-prediction grid and test_confidence.npz (each answer's confidence and whether
        it was right: accuracy-vs-coverage curves)."""
        p = self.test_predictions
        if not p:
            return []
        s = datamodule.test_set
        pred = [
            labels_to_string(d, n)
            for d, n in zip(p["digits"].numpy(), p["length"].numpy(), strict=True)
        ]
        n = len(pred)  # fewer than the test set when trainer.limit_test_batches cuts it short
        grid = prediction_grid(
            s.images[:n],
            s.numbers()[:n],
            pred,
            p["confidence"].numpy(),
            output_dir / "test_predictions.png",
        )
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, confidence=p["confidence"].numpy(), correct=p["correct"].numpy()
        )
        confidences = output_dir / "test_confidence.npz"
        atomic_write_bytes(confidences, buffer.getvalue())
        return [grid, confidences]
