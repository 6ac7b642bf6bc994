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

import os
from pathlib import Path

import mlflow
import numpy as np

ARTIFACT_PATH = "model"  # where each run logs its model: runs:/<id>/model
URI_SCHEMES = ("models:/", "runs:/")


class ReaderModel(mlflow.pyfunc.PythonModel):
    """The pyfunc flavor of a digitrec reader (see the module's docstring)."""

    def load_context(self, context):
        from digitrec.reading.pipeline import open_reader

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
    from digitrec.reading.pipeline import load_module

    _, h, w = load_module(reader_path).net.input_shape
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

    from digitrec.reading.pipeline import open_reader

    example = example_input(reader)
    probe = ReaderModel()
    probe.reader = open_reader(reader, localizer)
    from mlflow.types import Schema, TensorSpec

    signature = infer_signature(example, probe.predict(None, example))
    signature.inputs = Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, -1, 3))])
    with tempfile.TemporaryDirectory() as tmp:  # both are best.ckpt: name them by role
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
            code_paths=[str(Path(__file__).resolve().parents[1])],  # the digitrec package
            pip_requirements=_requirements(),
        )


def _requirements() -> list[str]:
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


def is_model_uri(ref: str | os.PathLike) -> bool:
    return str(ref).startswith(URI_SCHEMES)


def artifact_location(ref: str, uri: str) -> str:
    """Where a model URI's files are, asked of the tracking store and registry at `uri`:
    `models:/NAME@alias` and `models:/NAME/VERSION` through the registry, `models:/m-<id>` (a
    logged model) through the tracking store; `runs:/...` as it is. (MLflow's own download
    resolves `models:/` in the process's registry, not the one it is given.)"""
    if not ref.startswith("models:/"):
        return ref
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    path = ref[len("models:/") :].strip("/")
    if path.startswith("m-") and "/" not in path and "@" not in path:
        return client.get_logged_model(path).artifact_location
    if "@" in path:
        name, alias = path.split("@", 1)
        version = client.get_model_version_by_alias(name, alias).version
    else:
        name, _, version = path.rpartition("/")
        if not name or not version.isdigit():
            raise ValueError(f"{ref}: expected models:/NAME@alias or models:/NAME/VERSION")
    location = client.get_model_version_download_uri(name, version)
    return artifact_location(location, uri) if location.startswith("models:/") else location


def resolve(ref: str | os.PathLike, tracking_uri: str | None = None) -> tuple[Path, Path | None]:
    """(checkpoint, its localizer's checkpoint or None) for a checkpoint path, a logged model
    (`runs:/<run id>/model`) or a registered one (`models:/NAME@alias`, `models:/NAME/3`).
    A model URI is read from `tracking_uri` (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)
    and downloaded once into MLflow's artifact cache. Errors are one line naming the URI."""
    if not is_model_uri(ref):
        return Path(ref), None
    from mlflow.exceptions import MlflowException

    from digitrec.tracking import open_store

    uri = open_store(tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")).tracking_uri
    try:
        location = artifact_location(str(ref), uri)
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=location, tracking_uri=uri, registry_uri=uri
            )
        )
    except MlflowException as e:
        first = str(e.message if hasattr(e, "message") else e).splitlines()[0]
        raise ValueError(f"{ref}: not found in the tracking store {uri} ({first})") from None
    except OSError as e:
        raise ValueError(f"{ref}: cannot be read from {uri} ({e})") from None
    reader = local / "artifacts" / "reader.ckpt"
    localizer_alone = local / "extra_files" / "localizer.ckpt"  # a localizer's PyTorch model
    if not reader.is_file() and localizer_alone.is_file():
        return localizer_alone, None
    if not reader.is_file():
        found = sorted(p.name for p in local.glob("*/*.ckpt"))
        raise ValueError(f"{ref}: not a digitrec model (checkpoints: {found or 'none'})")
    localizer = local / "artifacts" / "localizer.ckpt"
    return reader, localizer if localizer.is_file() else None
