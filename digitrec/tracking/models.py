"""A training run's best checkpoint as its MLflow model, `runs:/<run id>/model`.

Readers (MNIST numbers, SVHN crops) are logged as the pyfunc of digitrec.reading.mlflow_model:
uint8 images in, number, confidence and box out; the checkpoint is the model's artifact, so
digitrec-predict and the other commands read `runs:/<id>/model` and `models:/NAME@alias`.
A localizer has no number to answer: it is logged with MLflow's PyTorch flavor (torch.export,
no digitrec code needed to load it), uint8 images (N, 3, S, S) in, normalized boxes (x0, y0, x1,
y1) out, with its checkpoint as an extra file (extra_files/localizer.ckpt).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import mlflow
import numpy as np

ARTIFACT_PATH = "model"


@contextlib.contextmanager
def active_run(tracking_uri: str, run_id: str):
    """Make the run (created with MlflowClient) MLflow's active run, for the fluent log_model.
    Leaving it marks the run terminated: log the model last, just before the run is closed."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    saved = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # no bars in the job's log
    try:
        with (
            warnings.catch_warnings(),
            _use_tracking_uri(tracking_uri),
            mlflow.start_run(
                run_id=run_id, nested=mlflow.active_run() is not None, log_system_metrics=False
            ),
        ):
            # MLflow's advice to type-hint PythonModel.predict (digitrec's pyfunc takes arrays)
            warnings.filterwarnings("ignore", ".*type hints to the `predict` method", UserWarning)
            yield
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = saved


def log_localizer_model(checkpoint: str | Path, name: str = ARTIFACT_PATH):
    """Log a localizer checkpoint in the active run with the PyTorch flavor; MLflow's ModelInfo."""
    import torch
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    from digitrec.reading.mlflow_model import _requirements
    from digitrec.reading.pipeline import load_module

    module = load_module(checkpoint)
    channels, size = module.net.input_shape[0], module.net.input_shape[-1]
    example = np.zeros((2, channels, size, size), np.uint8)  # 2: the batch stays dynamic
    signature = ModelSignature(
        Schema([TensorSpec(np.dtype(np.uint8), (-1, channels, size, size))]),
        Schema([TensorSpec(np.dtype(np.float32), (-1, 4))]),
    )
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        copy = shutil.copy(checkpoint, Path(tmp) / "localizer.ckpt")
        return mlflow.pytorch.log_model(
            module,
            name=name,
            signature=signature,
            input_example=example,
            extra_files=[str(copy)],
            pip_requirements=_requirements(),
        )
