"""Model references: a checkpoint path, a logged model (`runs:/<run id>/model`) or a registered
one (`models:/NAME@alias`, `models:/NAME/3`, `models:/m-<id>`), resolved to checkpoint files."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow

from digitrec.paths import default_tracking_uri

URI_SCHEMES = ("models:/", "runs:/")


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

    uri = open_store(tracking_uri or default_tracking_uri()).tracking_uri
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
    alone = sorted((local / "extra_files").glob("*.ckpt"))  # another task's PyTorch model
    if not reader.is_file() and alone:
        return alone[0], None
    if not reader.is_file():
        found = sorted(p.name for p in local.glob("*/*.ckpt"))
        raise ValueError(f"{ref}: not a digitrec model (checkpoints: {found or 'none'})")
    localizer = local / "artifacts" / "localizer.ckpt"
    return reader, localizer if localizer.is_file() else None
