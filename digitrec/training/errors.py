"""Which failures digitrec-train reports in one line, and that line.

The config, the tracking store, data and checkpoint files, the file system: expected, one line on
stderr, the traceback in the job's log. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sqlite3
import zlib

import requests
from hydra.errors import HydraException, OverrideParseException
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from digitrec.checkpoints import CheckpointError
from digitrec.tracking import TrackingError
from digitrec.training.config_check import ConfigError

EXPECTED = (
    ConfigError,
    HydraException,
    TrackingError,
    CheckpointError,
    MlflowException,
    SQLAlchemyError,
    sqlite3.Error,
    requests.RequestException,
    OSError,
    EOFError,
    zlib.error,
)
DATA_MODULES = ("digitrec.data.", "digitrec.datamodules.")  # their ValueErrors: bad data files
TRACKING = (MlflowException, SQLAlchemyError, sqlite3.Error, requests.RequestException)


def expected(e: BaseException) -> bool:
    if isinstance(e, EXPECTED):
        return True
    if not isinstance(e, ValueError) or e.__traceback__ is None:
        return False
    tb = e.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(tb.tb_frame.f_globals.get("__name__", "")).startswith(DATA_MODULES)


def describe(e: BaseException) -> str:
    """One line for an expected failure."""
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    if isinstance(e, HydraException):  # with the OmegaConf error under it ("Key 'x' is not ...")
        text = text.split(" Config search path:")[0]
        cause = str(e.__cause__ or "").strip().splitlines()
        text += f" ({cause[0]})" if cause and cause[0] not in text else ""
        if isinstance(e, OverrideParseException):  # "mismatched input '=' ..." in which one
            text = f"cannot parse {e.override!r}: {text.split(' See https://')[0]}"
    elif isinstance(e, TRACKING):
        text = f"tracking store: {' '.join(text.split('[SQL:')[0].split())}"  # no SQL statement
    elif not isinstance(e, ValueError | TrackingError) or not text:
        text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return text if len(text) <= 500 else text[:497] + "..."
