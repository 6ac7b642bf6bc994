"""Checkpoints as MLflow models, and model references resolved back to checkpoints.

A run's model is `runs:/<run id>/model`: a reader as digitrec's pyfunc (uint8 images in; number,
confidence and box out), any other task with MLflow's PyTorch flavor; both carry the checkpoint
itself, so every command reads `runs:/...` and `models:/NAME@alias` as it reads a file.
"""

from __future__ import annotations

from pathlib import Path

from digitrec import checkpoints
from digitrec.registry.resolve import URI_SCHEMES, artifact_location, is_model_uri, resolve

__all__ = [
    "URI_SCHEMES",
    "artifact_location",
    "is_model_uri",
    "log_checkpoint_model",
    "open_reader",
    "resolve",
    "resolve_reader",
]


def log_checkpoint_model(checkpoint: str | Path):
    """Log a checkpoint in the active MLflow run in its task's flavor: a reader or a detector (a
    photo reader on its own) as the pyfunc, any other task with the PyTorch flavor. MLflow's
    ModelInfo."""
    from digitrec.registry.pyfunc import log_reader_model
    from digitrec.registry.pytorch_model import log_pytorch_model
    from digitrec.tasks import task_name

    ckpt = checkpoints.load(checkpoint, needs=("state_dict", "hyper_parameters"))
    reader = task_name(ckpt) in ("reader", "detector")
    return (log_reader_model if reader else log_pytorch_model)(checkpoint)


def resolve_reader(
    reader: str | Path, localizer: str | Path | None = None, tracking_uri=None
) -> tuple[Path, Path | None]:
    """(the reader's checkpoint file, the localizer's or None) for paths or model URIs: the
    localizer given, else the one a logged two-stage model brings."""
    reader_file, bundled = resolve(reader, tracking_uri)
    if localizer is not None:
        return reader_file, resolve(localizer, tracking_uri)[0]
    return reader_file, bundled


def open_reader(reader: str | Path, localizer: str | Path | None = None, tracking_uri=None, **kw):
    """digitrec.inference.pipeline.open_reader for checkpoint paths or model URIs (a logged
    two-stage model brings its localizer)."""
    from digitrec.inference.pipeline import open_reader as open_files

    return open_files(*resolve_reader(reader, localizer, tracking_uri), **kw)
