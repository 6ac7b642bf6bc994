"""Where things are: the repository (an editable install's source), its configs, and the default
tracking store. The one place these are computed."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent  # digitrec/
ROOT = PACKAGE.parent  # the repository: conf/, requirements/, experiments/
CONF_DIR = ROOT / "conf"  # Hydra's config tree
EVAL_DIR = CONF_DIR / "eval"  # one file per evaluation suite
STORE_FILE = "mlflow.db"  # the embedded store's file name


def default_tracking_uri(base: str | Path | None = None) -> str:
    """$MLFLOW_TRACKING_URI, else the embedded SQLite store `mlflow.db` in `base` (default: the
    current folder): what every command reads and writes unless told otherwise."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path(base or Path.cwd()).absolute() / STORE_FILE}"
