"""What every task's LightningModule shares: optimizers from Hydra partials, evaluation outputs
gathered across processes, the checkpoint entry that says what the checkpoint is, and the hooks
`digitrec.training.train` calls without knowing the task."""

from __future__ import annotations

import inspect
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
import torch.distributed as dist

from digitrec import checkpoints


def to_input(images: torch.Tensor, mean_subtract: bool = False) -> torch.Tensor:
    """uint8 images (B, H, W) or (B, C, H, W) → float (B, C, H, W) in [0, 1]; with
    `mean_subtract`, minus each image's mean (the paper's SVHN preprocessing)."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    x = images.float().div_(255) if images.dtype == torch.uint8 else images.float()
    return x - x.mean(dim=(1, 2, 3), keepdim=True) if mean_subtract else x


def parameter_groups(module: torch.nn.Module) -> list[dict]:
    """Weight decay on the weights of convolutions, linear and recurrent layers only: biases and
    normalization parameters (every parameter of one dimension) get none, as nanoGPT does."""
    decay, no_decay = [], []
    for p in module.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


class TaskModule(pl.LightningModule):
    """A task: a network, its loss and metrics, and what it leaves with a run.

    Subclasses set `task` (the name checkpoints carry, a key of digitrec.tasks.TASKS) and
    `headline_metrics` (the test metrics a run prints at its end), build `self.net` (with
    `cost()` and `input_shape`), collect evaluation outputs with `_collect` and score them in
    `_score`, and may override `test_artifacts` and `default_preprocessing`.

    Optimizer and schedule come from Hydra partials (`_partial_: true`), completed here and not
    saved in checkpoints (a checkpoint rebuilds the network without Hydra).
    """

    task: ClassVar[str]
    headline_metrics: ClassVar[dict[str, str]] = {}

    def __init__(self, optimizer: partial | None, scheduler: partial | None):
        super().__init__()
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self._eval: dict[str, list] = defaultdict(list)  # per stage: (batch index, outputs)
        self.test_predictions: dict[str, torch.Tensor] = {}  # the last test epoch's, for plots
        self.preprocessing: dict[str, Any] = {}  # how inputs are made: stored in checkpoints

    # ------------------------------------------------------------------ what the run records
    def cost(self) -> dict[str, int]:
        """Parameters and multiply-adds per image."""
        return self.net.cost()

    def default_preprocessing(self) -> dict[str, Any]:
        """The recipe of a checkpoint that does not carry one (written before they did)."""
        return {}

    def test_artifacts(self, datamodule, output_dir: Path) -> list[Path]:
        """Files made from the last test epoch's predictions, logged with the run."""
        return []

    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        describe = getattr(datamodule, "preprocessing", None)
        if callable(describe):
            self.preprocessing = dict(describe())

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[checkpoints.META_KEY] = checkpoints.meta(
            self.task, self.preprocessing or self.default_preprocessing()
        )

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        info = checkpoint.get(checkpoints.META_KEY) or {}
        self.preprocessing = dict(info.get("preprocessing") or {})

    # ------------------------------------------------------------------ evaluation
    def validation_step(self, batch, batch_idx):
        self._collect("val", batch)

    def on_validation_epoch_end(self):
        self._score("val", self._gathered("val"))

    def test_step(self, batch, batch_idx):
        self._collect("test", batch)

    def on_test_epoch_end(self):
        self._score("test", self._gathered("test"))

    def _collect(self, stage: str, batch: dict) -> None:
        raise NotImplementedError

    def _score(self, stage: str, outs: list) -> None:
        raise NotImplementedError

    def _keep(self, stage: str, batch: dict, outputs: tuple) -> None:
        """Keep one batch's outputs (on the CPU) under its index in the evaluation set."""
        index = int(batch["index"]) if "index" in batch else len(self._eval[stage])
        self._eval[stage].append((index, outputs))

    def _gathered(self, stage: str) -> list:
        """Every process's kept outputs, each batch once, in the set's order: under DDP each
        process evaluates a share of the batches (a distributed sampler repeats some to even the
        shares); every process then scores the whole set and gets the same metrics."""
        kept = self._eval.pop(stage, [])
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            shares: list = [None] * dist.get_world_size()
            dist.all_gather_object(shares, kept)
            kept = [item for share in shares for item in share]
        return [outputs for _, outputs in sorted(dict(kept).items())]

    # ------------------------------------------------------------------ optimization
    def configure_optimizers(self):
        if self.optimizer_factory is None:
            raise ValueError("no optimizer configured (pass optimizer=partial(torch.optim.X, ...))")
        optimizer = self.optimizer_factory(params=parameter_groups(self))
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
