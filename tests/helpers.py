"""Shared test helpers: callbacks the sweep tests load into training subprocesses
(`+callbacks.x._target_=...`), and checkpoints for the reading and evaluation commands."""

import os
import signal

import pytorch_lightning as pl
import torch


class KillAtStep(pl.Callback):
    """SIGKILL the training process once it reaches `step`: no cleanup, no final checkpoint."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def save_checkpoint(module, path):
    """What a Lightning checkpoint holds for loading: the weights and the hyperparameters."""
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path
