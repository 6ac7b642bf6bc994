"""The tracking store: URIs and probes, clients, experiments, and the small logging helpers
every run and sweep uses."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from digitrec.paths import default_tracking_uri

PARENT_FILE = "mlflow_parent_run_id"
PARENT_TAG = "mlflow.parentRunId"
MAX_PARAM_LEN = 6000  # MLflow 3's limit on a parameter value
# the experiment tag MLflow's UI reads to pick an experiment's view (mlflow/server/js: the
# ExperimentKind values); this one opens the model-training view, not the GenAI one
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def is_local(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def add_uri_argument(parser) -> None:
    parser.add_argument(
        "--uri",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        help="tracking URI (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)",
    )


class TrackingError(Exception):
    """The tracking store cannot be used: unreachable, read-only or not a database."""


PROBE_TIMEOUT = 5.0  # seconds a tracking server has to answer before a run starts


def probe_store(uri: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Raise TrackingError (one line) unless the store at `uri` can take a run: an http(s) server
    answers within `timeout` seconds; a SQLite file is a database that can be written (or can be
    created); a file store's folder can be created. Other stores (databricks, postgresql, ...)
    are left to MLflow."""
    scheme = urllib.parse.urlsplit(uri).scheme
    if scheme in ("http", "https"):
        _probe_server(uri, timeout)
    elif scheme == "sqlite":
        _probe_sqlite(uri, timeout)
    elif scheme == "file" or "://" not in uri:
        path = Path(urllib.parse.urlsplit(uri).path if scheme == "file" else uri)
        _writable_place(uri, path)


def _probe_server(uri: str, timeout: float) -> None:
    url = f"{uri.rstrip('/')}/health"  # MLflow's server answers OK there
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except urllib.error.HTTPError:  # something answers (a proxy, another path): MLflow says more
        return
    except urllib.error.URLError as e:
        reason = e.reason
    except (OSError, ValueError) as e:  # timeouts, resets, a malformed URL
        reason = e
    if "SSL" in type(reason).__name__:  # it answers; certificates are MLflow's settings
        return
    raise TrackingError(
        f"tracking.uri={uri}: no tracking server answers ({reason or type(reason).__name__}; "
        f"waited at most {timeout:g} s)"
    )


def _sqlite_file(uri: str) -> tuple[str, bool]:
    """(the database file of a sqlite:/// URI or "" for an in-memory one, opened read-only?)"""
    rest = uri.removeprefix("sqlite:").removeprefix("///")
    rest, _, query = rest.partition("?")
    if rest.startswith("file:"):  # a SQLite URI filename: sqlite:///file:path?mode=ro&uri=true
        rest = urllib.parse.unquote(rest.removeprefix("file:").removeprefix("//"))
    read_only = "ro" in urllib.parse.parse_qs(query).get("mode", [])
    return ("" if rest in ("", ":memory:") else rest), read_only


def _probe_sqlite(uri: str, timeout: float) -> None:
    path, read_only = _sqlite_file(uri)
    if not path:
        return
    if not Path(path).exists():  # MLflow creates it (and its folders)
        _writable_place(uri, Path(path))
        return
    if read_only:
        raise TrackingError(
            f"tracking.uri={uri}: the store is opened read-only (mode=ro); "
            "a training run needs to write to it"
        )
    try:
        con = sqlite3.connect(
            f"file:{urllib.parse.quote(path)}?mode=rw",
            uri=True,
            timeout=timeout,
            isolation_level=None,
        )
    except sqlite3.Error as e:
        raise TrackingError(f"tracking.uri={uri}: cannot open {path} ({e})") from None
    try:
        con.execute("SELECT count(*) FROM sqlite_master")  # reads the header: is it a database?
        # a write that is rolled back: fails on a read-only file or folder
        con.execute("BEGIN IMMEDIATE")
        con.execute("CREATE TABLE _digitrec_probe (x)")
    except sqlite3.DatabaseError as e:
        if "locked" in str(e) or "busy" in str(e):  # another job is writing: it is writable
            return
        problem = (
            "cannot be written"
            if isinstance(e, sqlite3.OperationalError)
            else "is not an SQLite database"
        )
        raise TrackingError(f"tracking.uri={uri}: {path} {problem} ({e})") from None
    finally:
        if con.in_transaction:
            con.execute("ROLLBACK")
        con.close()


def _writable_place(uri: str, path: Path) -> None:
    """`path` exists as something writable, or can be created under a writable folder."""
    target = path.resolve()
    existing = next(p for p in [target, *target.parents] if p.exists())
    if existing != target and not existing.is_dir():
        raise TrackingError(f"tracking.uri={uri}: cannot create {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK):
        raise TrackingError(f"tracking.uri={uri}: {existing} is not writable")


def open_store(uri: str | None) -> MlflowClient:
    """A client for `uri` (default: $MLFLOW_TRACKING_URI, else ./mlflow.db); ValueError when a
    local store does not exist."""
    uri = uri or default_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise ValueError(f"no MLflow store at {uri} (pass --uri or set MLFLOW_TRACKING_URI)")
    return MlflowClient(tracking_uri=uri)


def experiment_id(client: MlflowClient, name: str, artifact_root: str | None = None) -> str:
    """Get or create the experiment `name` (safe against jobs creating it at the same time),
    tagged to open on MLflow's model-training view (an older experiment gets the tag too)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        if EXPERIMENT_KIND_TAG not in found.tags:  # made before the tag: set it, keep a user's
            client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return found.experiment_id
    location = None
    if artifact_root and is_local(client.tracking_uri):
        location = (Path(artifact_root).resolve() / name).as_uri()
    try:
        return client.create_experiment(
            name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
        )
    except MlflowException:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """{"model": {"net": {"depth": 5}}} → {"model.net.depth": "5"} (values cut to MLflow's limit)."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:MAX_PARAM_LEN]
    return flat


def git_commit(cwd: str | Path = ".") -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip() if out.returncode == 0 else "unknown"
    return f"{commit}-dirty" if dirty and commit != "unknown" else commit


def log_batched(client: MlflowClient, run_id: str, params=(), metrics=(), tags=()) -> None:
    """log_batch takes at most 100 params per call; send them in chunks."""
    params, metrics, tags = list(params), list(metrics), list(tags)
    for i in range(0, max(len(params), 1), 100):
        client.log_batch(
            run_id,
            params=params[i : i + 100],
            metrics=metrics if i == 0 else [],
            tags=tags if i == 0 else [],
        )


def hydra_job() -> tuple[str, str | None, str]:
    """(overrides of this job, sweep dir when in a multirun else None, job name)."""
    if not HydraConfig.initialized():
        return "", None, "run"
    hc = HydraConfig.get()
    overrides = " ".join(hc.overrides.task)
    multirun = str(hc.mode) == "RunMode.MULTIRUN"
    name = hc.job.override_dirname or hc.job.name
    return overrides, (hc.sweep.dir if multirun else None), name
