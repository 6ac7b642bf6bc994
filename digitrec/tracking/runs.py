"""One training job's MLflow run: created (as a sweep child when in a multirun) under a name
that says what differs, filled by Lightning's logger and digitrec, with its datasets, system
metrics, throughput and best model, then closed."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities import rank_zero_only

from digitrec.environment import lock_digest, pip_freeze
from digitrec.tracking.store import (
    MAX_PARAM_LEN,
    PARENT_FILE,
    PARENT_TAG,
    experiment_id,
    flatten,
    git_commit,
    hydra_job,
    is_local,
    log_batched,
)

log = logging.getLogger(__name__)

# seconds between system-metric samples (CPU, memory, disk, network; GPU with nvidia-ml-py):
# short runs get a few points; tracking.system_metrics_interval sets it (0: off), as does
# MLflow's MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL
SYSTEM_METRICS_INTERVAL = 2.0
RUN_NAME_LEN = 250


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


# ------------------------------------------------------------------------------- run names
def _short_value(value: str) -> str:
    """0.004944733002746449 → 0.004945 (integers and words unchanged)."""
    try:
        return value if value.lstrip("-").isdigit() else f"{float(value):.4g}"
    except ValueError:
        return value


def _choice(group: str) -> str | None:
    """The config group option Hydra chose (model=cnn → "cnn"), None outside Hydra."""
    if not HydraConfig.initialized():
        return None
    return (HydraConfig.get().runtime.get("choices") or {}).get(group)


def single_run_name(cfg: DictConfig) -> str:
    """cnn-d5-separate-s0: the model config's name, then its depth, head and the seed (those
    it has)."""
    model = cfg.get("model") or {}
    parts = [_choice("model") or str(model.get("_target_", "model")).rsplit(".", 1)[-1].lower()]
    if model.get("depth") is not None:
        parts.append(f"d{model.get('depth')}")
    if model.get("head"):
        parts.append(str(model.get("head")))
    if cfg.get("seed") is not None:
        parts.append(f"s{cfg.seed}")
    return "-".join(parts)


def child_run_name(overrides: Mapping[str, str], swept: list[str]) -> str:
    """A sweep child's name: its values of the swept keys, each key by its last part unless two
    share it (`depth=3 lr=0.001`); all its overrides when none is swept."""
    keys = [k for k in overrides if k in swept] or list(overrides)
    last = [k.rsplit(".", 1)[-1] for k in keys]
    names = [short if last.count(short) == 1 else k for k, short in zip(keys, last, strict=True)]
    return " ".join(f"{n}={_short_value(overrides[k])}" for n, k in zip(names, keys, strict=True))


def _overrides(text: str, excluded) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in text.split() if "=" in item)
    return {k.lstrip("+~"): v for k, v in pairs if k.lstrip("+~") not in excluded}


# ------------------------------------------------------------------------------- the run
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
        self._monitor = None  # the system metrics monitor, while it runs
        self.model_uri: str | None = None  # runs:/<id>/model once the model is logged
        if resume_run_id and self._resume(resume_run_id):
            return
        overrides, sweep_dir, job_name = hydra_job()
        parent = None
        if sweep_dir and (path := Path(sweep_dir) / PARENT_FILE).exists():
            parent = path.read_text().strip()
        tags = {
            "mlflow.source.name": "digitrec-train",
            "mlflow.runName": cfg.tracking.get("run_name")
            or self._name(overrides, parent, job_name)[:RUN_NAME_LEN],
            "started": datetime.now().astimezone().isoformat(timespec="seconds"),
            "output_dir": str(cfg.paths.output_dir),
            "git_commit": git_commit(cfg.paths.root_dir),
            "hydra_overrides": overrides or "(none)",
            "study": str(cfg.get("study", self.experiment_name)),
            "lock_digest": lock_digest() or "(no lock)",
        }
        if parent:
            tags[PARENT_TAG] = parent
        self.run_id = self.client.create_run(self.experiment_id, tags=tags).info.run_id
        self.parent_run_id = tags.get(PARENT_TAG)

    def _name(self, overrides: str, parent: str | None, job_name: str) -> str:
        """A single run by its model (single_run_name), a sweep child by its swept values."""
        if parent is None:
            return single_run_name(self.cfg)
        try:
            swept = list(
                json.loads(self.client.get_run(parent).data.tags.get("search_space", "{}"))
            )
        except (MlflowException, ValueError):
            swept = []
        excluded = ()
        if HydraConfig.initialized():
            excluded = HydraConfig.get().job.config.override_dirname.exclude_keys or ()
        return child_run_name(_overrides(overrides, set(excluded)), swept) or job_name

    def _resume(self, run_id: str) -> bool:
        """Continue the run a checkpoint came from (True), or say why not and start a new one."""
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            log.warning(
                "checkpoint's MLflow run %s is not in %s; starting a new run", run_id, self.uri
            )
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
        return _MLFlowLogger(
            experiment_name=self.experiment_name,
            tracking_uri=self.uri,
            run_id=self.run_id,
            log_model=False,
            logged_steps=self.logged_steps,
        )

    def callbacks(self) -> list[pl.Callback]:
        """The Lightning callbacks that fill the run: its datasets, train images/s per epoch."""
        return [LogDatasets(self), Throughput()]

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
            freeze = Path(tmp) / "pip-freeze.txt"  # the environment the run resolved
            freeze.write_text(pip_freeze())
            self.client.log_artifact(self.run_id, str(freeze), "environment")

    def log_params(self, values: Mapping[str, Any]) -> None:
        log_batched(
            self.client,
            self.run_id,
            params=[Param(k, str(v)[:MAX_PARAM_LEN]) for k, v in sorted(values.items())],
        )

    def log_metrics(self, values: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        metrics = [
            Metric(k, float(v), now, step)
            for k, v in values.items()
            if step > self.logged_steps.get(k, -1)
        ]
        log_batched(self.client, self.run_id, metrics=metrics)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tag(self, key: str, value: Any) -> None:
        self.client.set_tag(self.run_id, key, str(value))

    def log_datasets(self, infos) -> None:
        """The sets the run read (digitrec.datamodules.base.DatasetInfo, or a function giving
        them) as its dataset inputs; a failure is a warning and a `datasets_not_logged` tag, not
        a failed run."""
        from digitrec.tracking.datasets import dataset_input

        try:
            infos = infos() if callable(infos) else infos
            self.client.log_inputs(self.run_id, datasets=[dataset_input(i) for i in infos])
        except Exception as e:  # noqa: BLE001  (metadata: the training goes on)
            log.warning("datasets not logged: %s: %s", type(e).__name__, e)
            self.set_tag("datasets_not_logged", f"{type(e).__name__}: {e}"[:MAX_PARAM_LEN])

    def start_system_metrics(self, interval: float | None = None) -> None:
        """Sample CPU, memory, disk and network (GPU with nvidia-ml-py) into `system/...`
        metrics every `interval` seconds until the run is closed; 0: off. Without psutil: a
        warning and a `system_metrics` tag."""
        interval = SYSTEM_METRICS_INTERVAL if interval is None else float(interval)
        if interval <= 0:
            return
        try:
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
        except ImportError as e:  # psutil is missing
            log.warning("no system metrics: %s", e)
            self.set_tag("system_metrics", f"off: {e}")
            return
        self._monitor = SystemMetricsMonitor(
            self.run_id,
            sampling_interval=interval,
            resume_logging=self.resumed,
            tracking_uri=self.uri,
        )
        self._monitor.start()

    def log_model(self, checkpoint: str | None, write: Callable[[str], Any]) -> None:
        """The checkpoint the test read (the best one, else the last) as the run's MLflow model
        `model`, written by `write(checkpoint)` inside the run (digitrec.registry picks the flavor
        from what the checkpoint says it is). Called last, just before `finish`; a run without a
        checkpoint, or a failure, gets a `model_not_logged` tag (and a warning), not a failed
        run."""
        if not checkpoint:
            self.set_tag("model_not_logged", "no checkpoint (checkpointing is off)")
            return
        self._stop_monitor()  # leaving the active run marks it terminated: the monitor stops
        try:
            with active_run(self.uri, self.run_id):
                write(checkpoint)
        except Exception as e:  # noqa: BLE001  (the checkpoint is logged: the run stands)
            log.warning("model not logged: %s: %s", type(e).__name__, e)
            self.set_tag("model_not_logged", f"{type(e).__name__}: {e}"[:MAX_PARAM_LEN])
            return
        self.model_uri = f"runs:/{self.run_id}/model"
        self.set_tag("model_uri", self.model_uri)
        self.set_tag("model_checkpoint", Path(checkpoint).resolve())

    def _stop_monitor(self) -> None:
        """Stop sampling, then log one last point for the time since the last one (MLflow's
        monitor drops it: a run shorter than the interval would have none)."""
        monitor, self._monitor = self._monitor, None
        if monitor is None:
            return
        monitor.finish()
        try:
            monitor.collect_metrics()
            monitor.publish_metrics(monitor.aggregate_metrics())
            monitor.mlflow_logger.flush()
        except Exception as e:  # noqa: BLE001  (a missing last point is no failure)
            log.debug("last system metrics not logged: %s", e)

    def finish(self, status: str = "FINISHED") -> None:
        self._stop_monitor()
        self.client.set_terminated(self.run_id, status)

    def ui_hint(self) -> str:
        if is_local(self.uri):
            return f"make ui  (then http://127.0.0.1:5000/#/experiments/{self.experiment_id}/runs/{self.run_id})"
        return f"{self.uri}/#/experiments/{self.experiment_id}/runs/{self.run_id}"


# ------------------------------------------------------------------------------- callbacks
class LogDatasets(pl.Callback):
    """Logs the datamodule's `describe_datasets()` on the run once it is set up for fitting."""

    def __init__(self, tracker: RunTracker):
        self.tracker, self.done = tracker, False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        describe = getattr(trainer.datamodule, "describe_datasets", None)
        if self.done or stage != "fit" or describe is None or trainer.global_rank != 0:
            return
        self.done = True
        self.tracker.log_datasets(describe)


class Throughput(pl.Callback):
    """`train/images_per_second` after each training epoch: the images of its batches (all
    processes) over the time from the epoch's start to its last batch (validation excluded)."""

    def __init__(self):
        self.images, self.start, self.end = 0, 0.0, None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.images, self.start, self.end = 0, time.perf_counter(), None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        images = batch.get("image") if isinstance(batch, Mapping) else None
        self.images += len(images) if images is not None else 0
        self.end = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not self.images or self.end is None or self.end <= self.start or trainer.logger is None:
            return
        rate = self.images * trainer.world_size / (self.end - self.start)
        trainer.logger.log_metrics({"train/images_per_second": rate}, step=trainer.global_step)
