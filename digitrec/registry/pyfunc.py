"""A trained reader as an MLflow model: a pyfunc that takes uint8 images and answers numbers.

Logged as a model from code (mlflow_entry.py, no pickle) with the digitrec package beside it
(code_paths), its signature and an input example.

The model's artifacts are the checkpoints themselves (`reader.ckpt`, and `localizer.ckpt` for a
two-stage photo reader), so `models:/NAME@alias` and `runs:/ID/model` resolve to the same files
every digitrec command reads (`resolve`). `mlflow.pyfunc.load_model(uri).predict(images)` takes
a uint8 array (N, H, W, 3) — or (N, H, W) grayscale — and returns a DataFrame with `number`,
`confidence` and the box `x0, y0, x1, y1` in the image's pixels (the whole image for a reader
without a localizer); `mlflow models serve -m URI` answers the same over HTTP.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np

from digitrec.paths import PACKAGE

ARTIFACT_PATH = "model"  # where each run logs its model: runs:/<id>/model


class ReaderModel(mlflow.pyfunc.PythonModel):
    """The pyfunc flavor of a digitrec reader (see the module's docstring)."""

    def load_context(self, context):
        from digitrec.inference.pipeline import open_reader

        artifacts = context.artifacts
        self.reader = open_reader(artifacts["reader"], artifacts.get("localizer"))

    def predict(self, context, model_input, params=None):
        import pandas as pd

        if isinstance(model_input, dict):  # a named tensor
            model_input = next(iter(model_input.values()))
        images = np.asarray(model_input)
        if images.ndim == 3:  # grayscale → RGB
            images = np.repeat(images[..., None], 3, axis=3)
        if images.ndim != 4 or images.shape[3] != 3:
            raise ValueError(
                f"images of shape {images.shape}: expected (N, H, W, 3) or (N, H, W) uint8"
            )
        rows = []
        for image in images.astype(np.uint8, copy=False):
            r = self.reader(np.ascontiguousarray(image))
            rows.append(
                {
                    "number": r.number,
                    "confidence": r.confidence,
                    **dict(zip(("x0", "y0", "x1", "y1"), r.box, strict=True)),
                }
            )
        return pd.DataFrame(rows, columns=["number", "confidence", "x0", "y0", "x1", "y1"])


def example_input(reader_path: str | Path) -> np.ndarray:
    """One blank image of the size the reader reads (the model's input example)."""
    from digitrec.tasks import load_task

    _, h, w = load_task(reader_path).net.input_shape
    return np.zeros((1, h, w, 3), np.uint8)


def log_reader_model(
    reader: str | Path,
    localizer: str | Path | None = None,
    name: str = ARTIFACT_PATH,
    registered_model_name: str | None = None,
):
    """Log the checkpoint(s) as a pyfunc model in the active run, with its signature and an
    input example; returns MLflow's ModelInfo."""
    import shutil
    import tempfile

    from mlflow.models import infer_signature

    from digitrec.inference.pipeline import open_reader

    example = example_input(reader)
    probe = ReaderModel()
    probe.reader = open_reader(reader, localizer)
    from mlflow.types import Schema, TensorSpec

    signature = infer_signature(example, probe.predict(None, example))
    signature.inputs = Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, -1, 3))])
    import warnings

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():  # by role: both best.ckpt
        # the signature is given: MLflow's advice to infer it from type hints is noise here
        warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method")
        artifacts = {"reader": str(shutil.copy(reader, Path(tmp) / "reader.ckpt"))}
        if localizer is not None:
            artifacts["localizer"] = str(shutil.copy(localizer, Path(tmp) / "localizer.ckpt"))
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(Path(__file__).with_name("mlflow_entry.py")),
            artifacts=artifacts,
            signature=signature,
            input_example=example,
            registered_model_name=registered_model_name,
            code_paths=[str(PACKAGE)],  # the digitrec package
            pip_requirements=requirements(),
        )


def requirements() -> list[str]:
    """What loading the model needs besides the digitrec code it carries (code_paths)."""
    from importlib.metadata import version

    import torch

    pins = [f"torch=={torch.__version__.split('+')[0]}"]
    for name in (
        "pytorch-lightning",
        "numpy",
        "opencv-python-headless",
        "pillow",
        "pandas",
        "omegaconf",
    ):
        try:
            pins.append(f"{name}=={version(name)}")
        except Exception:  # not installed under that name: leave it to pip
            pins.append(name)
    return pins
