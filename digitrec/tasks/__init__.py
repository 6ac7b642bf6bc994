"""Tasks: the LightningModules digitrec trains — each owns its loss, metrics, artifacts and
cost — and the loader that rebuilds one from its checkpoint.

`TASKS` maps the name a checkpoint carries to its class; a new task registers here.
"""

from __future__ import annotations

from pathlib import Path

import torch

from digitrec import checkpoints
from digitrec.checkpoints import CheckpointError
from digitrec.io import first_line
from digitrec.tasks.base import TaskModule, to_input
from digitrec.tasks.detector import NumberDetector
from digitrec.tasks.localizer import BoxLocalizer
from digitrec.tasks.reader import DigitReader

TASKS: dict[str, type[TaskModule]] = {
    "reader": DigitReader,
    "localizer": BoxLocalizer,
    "detector": NumberDetector,
}

__all__ = [
    "TASKS",
    "BoxLocalizer",
    "DigitReader",
    "NumberDetector",
    "TaskModule",
    "load_task",
    "to_input",
]


def legacy_task(hyper_parameters: dict) -> str:
    """The task of a checkpoint written before checkpoints named it (digitrec before issue 28):
    only a localizer had a GIoU weight."""
    return "localizer" if "giou_weight" in hyper_parameters else "reader"


def task_name(ckpt: checkpoints.Checkpoint) -> str:
    """The task a checkpoint holds: the one it names, else (an old checkpoint) its legacy task."""
    return ckpt.task or legacy_task(ckpt.hyper_parameters)


def _check_sizes(cls, hyper_parameters: dict, state: dict) -> None:
    """The network the hyperparameters declare, built without memory (on the meta device), must
    have exactly the checkpoint's weights: a file declaring a huge network with no weights for it
    is refused before anything is allocated."""
    with torch.device("meta"):
        shell = cls(**hyper_parameters)
    expected = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    for key, shape in expected.items():
        if key not in state:
            raise ValueError(
                f"no weights for {key!r} {list(shape)} that its hyperparameters declare"
            )
        got = tuple(getattr(state[key], "shape", ()))
        if got != shape:
            raise ValueError(
                f"{key!r} is {list(got)} where its hyperparameters declare {list(shape)}"
            )
    extra = sorted(set(state) - set(expected))
    if extra:
        raise ValueError(f"weights {extra[0]!r} that its hyperparameters do not declare")


def load_task(path: str | Path, key: str | None = None) -> TaskModule:
    """The task module a checkpoint holds, in eval mode, with its preprocessing recipe (the one
    it carries, else the task's default). One-line errors naming `key` (or the path):
    FileNotFoundError for a missing file, CheckpointError for anything that is not a checkpoint
    of a known task whose weights fit it."""
    ckpt = checkpoints.load(path, key, needs=("state_dict", "hyper_parameters"))
    where = f"{key}={path}" if key else str(path)
    name = task_name(ckpt)
    cls = TASKS.get(name)
    if cls is None:
        raise CheckpointError(
            f"{where}: a checkpoint of the task {name!r}; this digitrec knows {', '.join(TASKS)}"
        )
    try:
        _check_sizes(cls, ckpt.hyper_parameters, ckpt.state["state_dict"])
        module = cls(**ckpt.hyper_parameters)
        module.load_state_dict(ckpt.state["state_dict"])
    except (TypeError, ValueError, KeyError, RuntimeError) as e:
        first = first_line(e)
        raise CheckpointError(
            f"{where}: its weights do not fit a {cls.__name__} ({first[:300]})"
        ) from None
    module.preprocessing = ckpt.preprocessing or module.default_preprocessing()
    return module.eval()
