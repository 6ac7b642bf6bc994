"""Callbacks every training run gets from digitrec.training.train."""

from __future__ import annotations

import pytorch_lightning as pl

from digitrec.checkpoints import RUN_ID_KEY


class RunIdInCheckpoint(pl.Callback):
    """Writes the MLflow run id into every checkpoint, so `ckpt_path=` resumes into that run."""

    def __init__(self, run_id: str):
        self.run_id = run_id

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[RUN_ID_KEY] = self.run_id
