"""Checkpoints: the one loader, its one-line errors, and what a checkpoint says about itself.

A digitrec checkpoint is a Lightning checkpoint with the MLflow run that wrote it
(`mlflow_run_id`) and an entry `digitrec`:

    {"format": 1, "task": "reader" | "localizer" | ..., "preprocessing": {...}}

`task` names the LightningModule that rebuilds it (digitrec.tasks.TASKS) and `preprocessing` the
recipe its inputs were made with (as timm's `pretrained_cfg` travels with its weights), e.g. an
SVHN crop reader's {"kind": "crop", "expand": 0.3, "image_size": 64, "crop": 54}. Every consumer
(predict, serve, export, the evaluations, the MLflow model) reads them from here. Checkpoints
written before the entry existed (digitrec before issue 28) still load: their task is told by its
hyperparameters (digitrec.tasks.legacy_task) and their preprocessing is the task's default.

Loading is weights-only (no pickle runs) and memory-mapped for torch's zip format.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

META_KEY = "digitrec"  # the entry a checkpoint says what it is in
FORMAT = 1
RUN_ID_KEY = "mlflow_run_id"  # the MLflow run that wrote it (ckpt_path= resumes into it)


class CheckpointError(ValueError):
    """A checkpoint file that does not load (not a checkpoint, corrupt, unsafe to unpickle, or a
    task this version does not know)."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: its entries, and what it says it is."""

    path: Path
    state: dict
    task: str | None  # None: written before checkpoints said (see digitrec.tasks.legacy_task)
    preprocessing: dict = field(default_factory=dict)

    @property
    def hyper_parameters(self) -> dict:
        return dict(self.state.get("hyper_parameters") or {})

    @property
    def run_id(self) -> str | None:
        return self.state.get(RUN_ID_KEY)

    @property
    def global_step(self) -> int:
        return int(self.state.get("global_step", 0))


def meta(task: str, preprocessing: dict | None) -> dict:
    """The `digitrec` entry for a checkpoint of `task`."""
    return {"format": FORMAT, "task": task, "preprocessing": dict(preprocessing or {})}


def _where(path: str | Path, key: str | None) -> str:
    return f"{key}={path}" if key else str(path)


def load(
    path: str | Path, key: str | None = None, needs: tuple[str, ...] = ("state_dict",)
) -> Checkpoint:
    """A checkpoint loaded weights-only on the CPU. `key` names the config key or argument in the
    one-line errors: FileNotFoundError when the file is missing, CheckpointError when it is not
    a checkpoint or lacks one of the entries `needs`."""
    path = Path(path)
    where = _where(path, key)
    if not path.is_file():
        raise FileNotFoundError(f"{where}: no such checkpoint file")
    try:
        with warnings.catch_warnings():  # torch's notes on odd pickles: the error says enough
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(
                path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path)
            )
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise CheckpointError(
            f"{where}: not a readable PyTorch checkpoint ({_problem(e)})"
        ) from None
    missing = [k for k in needs if k not in state] if isinstance(state, dict) else list(needs)
    if missing:
        raise CheckpointError(
            f"{where}: not a Lightning checkpoint (no {missing[0]!r} in it); save one with "
            "Lightning's Trainer or ModelCheckpoint"
        )
    info = state.get(META_KEY)
    if info is None:
        return Checkpoint(path, state, None, {})
    if not isinstance(info, dict) or not isinstance(info.get("task"), str):
        raise CheckpointError(f"{where}: its {META_KEY!r} entry does not name a task")
    if int(info.get("format", FORMAT)) > FORMAT:
        raise CheckpointError(
            f"{where}: written by a newer digitrec (checkpoint format {info['format']}, this "
            f"version reads {FORMAT})"
        )
    return Checkpoint(path, state, info["task"], dict(info.get("preprocessing") or {}))


def run_of(path: str | Path | None) -> tuple[str | None, int]:
    """(the MLflow run a checkpoint was written by or None, its global step); (None, 0) for none."""
    if not path:
        return None, 0
    ckpt = load(path, "ckpt_path", needs=("state_dict", "pytorch-lightning_version"))
    return ckpt.run_id, ckpt.global_step


def _problem(e: Exception) -> str:
    """What torch.load's error says is wrong, in a few words (its messages open with advice)."""
    text = str(e)
    if "WeightsUnpickler error:" in text:  # a pickle a weights-only load refuses
        detail = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation")[0]
        return f"a weights-only load refuses it: {' '.join(detail.split()).split('. ')[0]}"
    if isinstance(e, EOFError):
        return "the file ends too soon"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first.split(". ")[0] if first else type(e).__name__
