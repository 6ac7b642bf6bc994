"""MLflow tracking: one experiment per study, one run per training job, one parent run per sweep.

The default store is embedded: a SQLite file in the project directory with artifacts beside it;
any other tracking URI (an `mlflow server`, databricks, ...) comes from `tracking.uri` or the
MLFLOW_TRACKING_URI environment variable. A Hydra multirun creates its parent run in
`SweepParentRun.on_multirun_start` (launcher process) and leaves its id in the sweep directory,
where every job — in the same process, a joblib worker, or a cluster node — finds it.
"""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)

PARENT_FILE = "mlflow_parent_run_id"
PARENT_TAG = "mlflow.parentRunId"
MAX_PARAM_LEN = 6000  # MLflow 3's limit on a parameter value


def is_local(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


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


class RunTracker:
    """One training job's MLflow run: created (as a sweep child when in a multirun), filled, closed."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.uri = str(cfg.tracking.uri)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_name = str(cfg.tracking.experiment)
        self.experiment_id = experiment_id(
            self.client, self.experiment_name, cfg.tracking.get("artifact_root")
        )
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

    def lightning_logger(self):
        from pytorch_lightning.loggers import MLFlowLogger

        return MLFlowLogger(experiment_name=self.experiment_name, tracking_uri=self.uri,
                            run_id=self.run_id, log_model=False)  # fmt: skip

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
        metrics = [Metric(k, float(v), now, step) for k, v in values.items()]
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


class SweepParentRun(Callback):
    """Hydra callback: a multirun becomes one MLflow parent run with every job nested under it."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not HydraConfig.initialized():  # the launcher process: let ${hydra:...} resolve
            HydraConfig.instance().set_config(config)
        client = MlflowClient(tracking_uri=str(config.tracking.uri))
        exp = experiment_id(
            client, str(config.tracking.experiment), config.tracking.get("artifact_root")
        )
        sweep_dir = Path(config.hydra.sweep.dir)
        overrides = " ".join(config.hydra.overrides.task)
        tags = {
            "mlflow.runName": f"sweep {sweep_dir.name}",
            "mlflow.source.name": "digitrec-train -m",
            "sweep": "true",
            "sweep_dir": str(sweep_dir.resolve()),
            "hydra_overrides": overrides or "(none)",
            "objective": str(config.tracking.objective),
            "sweeper": str(config.hydra.sweeper.get("_target_", "")),
            "git_commit": git_commit(),
        }
        run = client.create_run(exp, tags=tags)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        tmp = sweep_dir / f".{PARENT_FILE}.tmp"
        tmp.write_text(run.info.run_id)
        tmp.replace(sweep_dir / PARENT_FILE)
        log.info(
            "MLflow sweep parent run %s (experiment %s)",
            run.info.run_id,
            config.tracking.experiment,
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        parent_id = (sweep_dir / PARENT_FILE).read_text().strip()
        client = MlflowClient(tracking_uri=str(config.tracking.uri))
        objective = str(config.tracking.objective)
        parent = client.get_run(parent_id)
        children = client.search_runs(
            [parent.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'"
        )
        scored = [(c.data.metrics[objective], c) for c in children if objective in c.data.metrics]
        failed = sum(c.info.status == "FAILED" for c in children)
        client.set_tag(parent_id, "children", len(children))
        client.set_tag(parent_id, "children_failed", failed)
        if scored:
            maximize = str(config.tracking.get("objective_mode", "max")) == "max"
            value, best = (max if maximize else min)(scored, key=lambda vc: vc[0])
            client.set_tag(parent_id, "best_run_id", best.info.run_id)
            client.set_tag(parent_id, "best_overrides", best.data.tags.get("hydra_overrides", ""))
            client.log_metric(parent_id, f"best/{objective}", value)
        all_failed = not children or failed == len(children)
        client.set_terminated(parent_id, "FAILED" if all_failed else "FINISHED")
