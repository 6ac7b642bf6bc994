"""A training run's best checkpoint as its MLflow model, `runs:/<run id>/model`.

Readers (MNIST numbers, SVHN crops) are logged as the pyfunc of digitrec.registry.pyfunc:
uint8 images in, number, confidence and box out; the checkpoint is the model's artifact, so
digitrec-predict and the other commands read `runs:/<id>/model` and `models:/NAME@alias`.
The other tasks (the localizer, the detector) have no number to answer: they are logged with
MLflow's PyTorch flavor (torch.export, no digitrec code needed to load it), uint8 images
(N, 3, S, S) in, the network's output out (the localizer's normalized boxes (N, 4); the detector's
maps (N, 5, S/4, S/4)), with the checkpoint as an extra file (extra_files/<task>.ckpt).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import mlflow
import numpy as np

ARTIFACT_PATH = "model"


def log_pytorch_model(checkpoint: str | Path, name: str = ARTIFACT_PATH):
    """Log a checkpoint of a task without a pyfunc (the localizer) in the active run with the
    PyTorch flavor, the checkpoint as `extra_files/<task>.ckpt`; MLflow's ModelInfo."""
    import torch
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    from digitrec.registry.pyfunc import requirements
    from digitrec.tasks import load_task

    module = load_task(checkpoint)
    channels, size = module.net.input_shape[0], module.net.input_shape[-1]
    example = np.zeros((2, channels, size, size), np.uint8)  # 2: the batch stays dynamic
    with torch.no_grad():  # the output's shape, whatever the task answers
        out = module.eval()(torch.from_numpy(example))
    signature = ModelSignature(
        Schema([TensorSpec(np.dtype(np.uint8), (-1, channels, size, size))]),
        Schema([TensorSpec(np.dtype(np.float32), (-1, *out.shape[1:]))]),
    )
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        copy = shutil.copy(checkpoint, Path(tmp) / f"{module.task}.ckpt")
        return mlflow.pytorch.log_model(
            module,
            name=name,
            signature=signature,
            input_example=example,
            extra_files=[str(copy)],
            pip_requirements=requirements(),
        )
