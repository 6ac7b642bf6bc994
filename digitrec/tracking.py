"""MLflow tracking: one experiment per study, one run per training job, one parent run per sweep.

The default store is embedded: a SQLite file in the project directory with artifacts beside it;
any other tracking URI (an `mlflow server`, databricks, ...) comes from `tracking.uri` or the
MLFLOW_TRACKING_URI environment variable. A Hydra multirun creates its parent run in
`SweepParentRun.on_multirun_start` (launcher process) and leaves its id in the sweep directory,
where every job — in the same process, a joblib worker, or a cluster node — finds it.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities import rank_zero_only

log = logging.getLogger(__name__)

PARENT_FILE = "mlflow_parent_run_id"
PARENT_TAG = "mlflow.parentRunId"
MAX_PARAM_LEN = 6000  # MLflow 3's limit on a parameter value


def is_local(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def add_uri_argument(parser) -> None:
    parser.add_argument("--uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                        help="tracking URI (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)")  # fmt: skip


def open_store(uri: str | None) -> MlflowClient:
    """A client for `uri` (default: ./mlflow.db); ValueError when a local store does not exist."""
    uri = uri or f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise ValueError(f"no MLflow store at {uri} (pass --uri or set MLFLOW_TRACKING_URI)")
    return MlflowClient(tracking_uri=uri)


def experiment_id(client: MlflowClient, name: str, artifact_root: str | None = None) -> str:
    """Get or create the experiment `name` (safe against jobs creating it at the same time)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if artifact_root and is_local(client.tracking_uri):
        location = (Path(artifact_root).resolve() / name).as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
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
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10)  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip() if out.returncode == 0 else "unknown"
    return f"{commit}-dirty" if dirty and commit != "unknown" else commit


def log_batched(client: MlflowClient, run_id: str, params=(), metrics=(), tags=()) -> None:
    """log_batch takes at most 100 params per call; send them in chunks."""
    params, metrics, tags = list(params), list(metrics), list(tags)
    for i in range(0, max(len(params), 1), 100):
        client.log_batch(run_id, params=params[i : i + 100], metrics=metrics if i == 0 else [],
                         tags=tags if i == 0 else [])  # fmt: skip


def hydra_job() -> tuple[str, str | None, str]:
    """(overrides of this job, sweep dir when in a multirun else None, job name)."""
    if not HydraConfig.initialized():
        return "", None, "run"
    hc = HydraConfig.get()
    overrides = " ".join(hc.overrides.task)
    multirun = str(hc.mode) == "RunMode.MULTIRUN"
    name = hc.job.override_dirname or hc.job.name
    return overrides, (hc.sweep.dir if multirun else None), name


class _MLFlowLogger(MLFlowLogger):
    """Lightning's MLflow logger that skips steps a resumed run logged before it was killed.

    A run resumed from its last checkpoint replays the steps between that checkpoint and the
    kill; MLflow cannot overwrite a metric step, so the first life's values are kept for those.
    """

    def __init__(self, *args, logged_steps: Mapping[str, int] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._logged_steps = dict(logged_steps or {})

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if step is not None and self._logged_steps:
            metrics = {k: v for k, v in metrics.items() if step > self._logged_steps.get(k, -1)}
        if metrics:
            super().log_metrics(metrics, step)


class RunTracker:
    """One training job's MLflow run: created (as a sweep child when in a multirun), filled, closed."""

    def __init__(self, cfg: DictConfig, resume_run_id: str | None = None):
        self.cfg = cfg
        self.uri = str(cfg.tracking.uri)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_name = str(cfg.tracking.experiment)
        self.experiment_id = experiment_id(
            self.client, self.experiment_name, cfg.tracking.get("artifact_root")
        )
        self.logged_steps: dict[str, int] = {}  # resumed runs: the last step logged per metric
        self.resumed = False
        if resume_run_id and self._resume(resume_run_id):
            return
        overrides, sweep_dir, job_name = hydra_job()
        tags = {
            "mlflow.source.name": "digitrec-train",
            "mlflow.runName": cfg.tracking.get("run_name")
            or (job_name[:250] if sweep_dir else Path(str(cfg.paths.output_dir)).name),
            "git_commit": git_commit(cfg.paths.root_dir),
            "hydra_overrides": overrides or "(none)",
            "study": str(cfg.get("study", self.experiment_name)),
        }
        if sweep_dir and (parent := Path(sweep_dir) / PARENT_FILE).exists():
            tags[PARENT_TAG] = parent.read_text().strip()
        self.run_id = self.client.create_run(self.experiment_id, tags=tags).info.run_id
        self.parent_run_id = tags.get(PARENT_TAG)

    def _resume(self, run_id: str) -> bool:
        """Continue the run a checkpoint came from (True), or say why not and start a new one."""
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            log.warning("checkpoint's MLflow run %s is not in %s; starting a new run", run_id,
                        self.uri)  # fmt: skip
            return False
        self.run_id, self.resumed = run_id, True
        self.experiment_id = run.info.experiment_id
        self.parent_run_id = run.data.tags.get(PARENT_TAG)
        # the steps already logged: a resumed fit replays the steps after its checkpoint
        for key in run.data.metrics:
            history = self.client.get_metric_history(run_id, key)
            self.logged_steps[key] = max((m.step for m in history), default=-1)
        self.client.update_run(run_id, status="RUNNING")
        self.set_tag("resumed", int(run.data.tags.get("resumed", "0")) + 1)
        log.info("resuming MLflow run %s from its checkpoint", run_id)
        return True

    def lightning_logger(self):
        return _MLFlowLogger(experiment_name=self.experiment_name, tracking_uri=self.uri,
                             run_id=self.run_id, log_model=False,
                             logged_steps=self.logged_steps)  # fmt: skip

    def log_config(self, extra: Mapping[str, Any] | None = None) -> None:
        resolved = OmegaConf.to_container(self.cfg, resolve=True)
        params = flatten(resolved)
        params.update({k: str(v) for k, v in (extra or {}).items()})
        log_batched(
            self.client, self.run_id, params=[Param(k, v) for k, v in sorted(params.items())]
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "config.yaml"
            path.write_text(OmegaConf.to_yaml(self.cfg, resolve=True))
            self.client.log_artifact(self.run_id, str(path))

    def log_metrics(self, values: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items()
                   if step > self.logged_steps.get(k, -1)]  # fmt: skip
        log_batched(self.client, self.run_id, metrics=metrics)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tag(self, key: str, value: Any) -> None:
        self.client.set_tag(self.run_id, key, str(value))

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)

    def ui_hint(self) -> str:
        if is_local(self.uri):
            return f"make ui  (then http://127.0.0.1:5000/#/experiments/{self.experiment_id}/runs/{self.run_id})"
        return f"{self.uri}/#/experiments/{self.experiment_id}/runs/{self.run_id}"


SWEEP_MARKS = (",", "choice(", "range(", "interval(", "glob(")


def search_space(config: DictConfig) -> dict[str, str]:
    """What a sweep varies: the sweeper's `params` plus sweep overrides from the command line."""
    space = {str(k): str(v) for k, v in (config.hydra.sweeper.get("params") or {}).items()}
    for item in config.hydra.overrides.task:
        key, _, value = item.partition("=")
        if not value.startswith(("[", "{")) and any(m in value for m in SWEEP_MARKS):
            space[key.lstrip("+~")] = value
    return space


def is_optuna(config: DictConfig) -> bool:
    return "optuna" in str(config.hydra.sweeper.get("_target_", "")).lower()


def sampler_name(config: DictConfig, finished: int = 0) -> str:
    """The sweep's sampler and the seed it runs with: an Optuna sweeper moves the seed on by the
    trials its study has `finished` (digitrec/sweepers/optuna_sweeper.py)."""
    if not is_optuna(config):
        return "grid (Hydra basic sweeper)"
    sampler = config.hydra.sweeper.get("sampler") or {}
    name = str(sampler.get("_target_", "?")).rsplit(".", 1)[-1]
    seed = sampler.get("seed")
    return f"optuna {name} (seed {seed if seed is None else int(seed) + finished})"


def finished_optuna_trials(config: DictConfig) -> int:
    """How many trials an Optuna sweep's study has finished (0: a new study, or no storage).

    The sweeper resumes the study itself: n_trials is the study's total, so it runs only the
    trials still missing, marks FAIL the trials a killed sweep left RUNNING and moves the
    sampler's seed on by this number (digitrec/sweepers/optuna_sweeper.py).
    """
    sweeper = config.hydra.sweeper
    if not is_optuna(config) or not sweeper.get("storage"):
        return 0
    from digitrec.sweepers.optuna_sweeper import finished_trials

    return finished_trials(str(sweeper.storage), str(sweeper.study_name))


def children_of(client: MlflowClient, parent, order_by: list[str] | None = None) -> list:
    return client.search_runs([parent.info.experiment_id],
                              filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'",
                              order_by=order_by, max_results=50000)  # fmt: skip


def latest_sweep(client: MlflowClient, experiment_id: str, finished_only: bool = False):
    """The newest sweep parent run of an experiment (None if it has none)."""
    query = "tags.sweep = 'true'" + (" and attributes.status = 'FINISHED'" if finished_only else "")
    found = client.search_runs([experiment_id], query, order_by=["start_time DESC"], max_results=1)
    return found[0] if found else None


def run_overrides(run) -> dict[str, str]:
    """The Hydra overrides a run was started with (its `hydra_overrides` tag), as key → value."""
    pairs = (item.split("=", 1) for item in run.data.tags.get("hydra_overrides", "").split()
             if "=" in item)  # fmt: skip
    return {k.lstrip("+~"): v for k, v in pairs}


class SweepParentRun(Callback):
    """Hydra callback: a multirun becomes one MLflow parent run with every job nested under it.

    Parent tags: sweep (name), search_space (JSON), objective, sampler, sweeper; at the end
    best_run_id, best_params (JSON) and best.<param> tags, the metric best/<objective>, and
    children / children_failed. An Optuna sweep keeps one parent per study: re-running an
    interrupted search continues the same parent run.
    """

    _open: str | None = None  # the parent run until it is closed

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not HydraConfig.initialized():  # the launcher process: let ${hydra:...} resolve
            HydraConfig.instance().set_config(config)
        client = MlflowClient(tracking_uri=str(config.tracking.uri))
        exp = experiment_id(
            client, str(config.tracking.experiment), config.tracking.get("artifact_root")
        )
        sweep_dir = Path(config.hydra.sweep.dir)
        name = str(config.tracking.get("sweep_name") or sweep_dir.name)
        finished = finished_optuna_trials(config)  # an Optuna study resumed: its trials so far
        tags = {
            "mlflow.runName": f"sweep {name}",
            "mlflow.source.name": "digitrec-train -m",
            "sweep": "true",
            "sweep_name": name,
            "sweep_dir": str(sweep_dir.resolve()),
            "search_space": json.dumps(search_space(config), sort_keys=True)[:MAX_PARAM_LEN],
            "hydra_overrides": " ".join(config.hydra.overrides.task) or "(none)",
            "objective": f"{config.tracking.objective} ({config.tracking.get('objective_mode', 'max')})",
            "sampler": sampler_name(config, finished),
            "sweeper": str(config.hydra.sweeper.get("_target_", "")),
            "launcher": str(config.hydra.launcher.get("_target_", "")),
            "git_commit": git_commit(),
        }
        parent_id = None
        if is_optuna(config) and config.hydra.sweeper.get("storage"):
            tags["optuna_study"] = (
                f"{config.hydra.sweeper.study_name} @ {config.hydra.sweeper.storage}"
            )
            found = client.search_runs(
                [exp], f"tags.sweep = 'true' and tags.optuna_study = '{tags['optuna_study']}'",
                order_by=["start_time DESC"], max_results=1,
            )  # fmt: skip
            if found:  # the same study again: continue its parent run
                parent_id = found[0].info.run_id
                client.update_run(parent_id, status="RUNNING")
                for key in ("sweep_dir", "sampler", "git_commit"):
                    client.set_tag(parent_id, key, tags[key])
        if parent_id is None:
            parent_id = client.create_run(exp, tags=tags).info.run_id
        sweep_dir.mkdir(parents=True, exist_ok=True)
        tmp = sweep_dir / f".{PARENT_FILE}.tmp"
        tmp.write_text(parent_id)
        tmp.replace(sweep_dir / PARENT_FILE)
        log.info("MLflow sweep parent run %s (experiment %s)", parent_id,
                 config.tracking.experiment)  # fmt: skip
        # on_multirun_end is skipped when the sweep raises (Hydra's basic sweeper does once every
        # job has run, if one failed) or is interrupted: the parent is closed at exit instead
        self._open = parent_id
        atexit.register(self._close, config, "FAILED")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._close(config)

    def _close(self, config: DictConfig, status: str | None = None) -> None:
        """Record the best child and close the parent; `status` forces the final state (atexit
        passes FAILED: the sweep raised or was interrupted before on_multirun_end)."""
        if self._open is None:  # already closed
            return
        parent_id, self._open = self._open, None
        client = MlflowClient(tracking_uri=str(config.tracking.uri))
        summary = record_best(client, client.get_run(parent_id), str(config.tracking.objective),
                              str(config.tracking.get("objective_mode", "max")) == "max",
                              list(search_space(config)), status=status)  # fmt: skip
        if status:
            log.warning("sweep did not complete: %s", summary)
        else:
            log.info("%s; compare: digitrec-compare %s", summary, parent_id)


def record_best(client: MlflowClient, parent, objective: str, maximize: bool, keys: list[str],
                status: str | None = None) -> str:  # fmt: skip
    """Tag the parent with its best child (run id, params, metric) and close it: FINISHED unless
    every child failed, or `status`."""
    parent_id = parent.info.run_id
    children = children_of(client, parent)
    scored = [(c.data.metrics[objective], c) for c in children
              if objective in c.data.metrics and c.info.status == "FINISHED"]  # fmt: skip
    failed = sum(c.info.status == "FAILED" for c in children)
    client.set_tag(parent_id, "children", len(children))
    client.set_tag(parent_id, "children_failed", failed)
    summary = f"{len(children)} jobs, {failed} failed"
    if scored:
        value, best = (max if maximize else min)(scored, key=lambda vc: vc[0])
        params = {k: best.data.params.get(k, "?") for k in keys}
        tags = {"best_run_id": best.info.run_id, "best_params": json.dumps(params, sort_keys=True),
                "best_overrides": best.data.tags.get("hydra_overrides", "")}  # fmt: skip
        tags.update({f"best.{k}": v for k, v in params.items()})
        for key, text in tags.items():
            client.set_tag(parent_id, key, text[:MAX_PARAM_LEN])
        client.log_metric(parent_id, f"best/{objective}", value, step=len(children))
        summary += f"; best {objective} = {value:.4f} (run {best.info.run_id}: {params})"
    all_failed = not children or failed == len(children)
    client.set_terminated(parent_id, status or ("FAILED" if all_failed else "FINISHED"))
    return summary
