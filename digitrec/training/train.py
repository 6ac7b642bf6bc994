"""`train(cfg)`: datamodule → task → callbacks → tracked run → fit → test → artifacts and model.

It names no task and no dataset: what differs between tasks lives in the task (its cost, metrics,
test artifacts, checkpoint entry: digitrec.tasks.base.TaskModule) and the datamodule (its tags and
preprocessing), and in callbacks from the config (the evaluation suites). digitrec-train
(digitrec.cli.train) composes the config and calls it.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig

from digitrec import checkpoints
from digitrec.checkpoints import CheckpointError
from digitrec.io import first_line
from digitrec.registry import log_checkpoint_model
from digitrec.tracking import RunTracker
from digitrec.training.callbacks import RunIdInCheckpoint
from digitrec.training.config_check import ConfigError, check, check_accelerator
from digitrec.training.summary import summary

log = logging.getLogger(__name__)


def _callbacks(cfg: DictConfig) -> list[pl.Callback]:
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c]


def _launched_rank() -> int:
    """The process's rank when a DDP launcher started it (Lightning sets these for its children)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))


def in_multirun() -> bool:
    return HydraConfig.initialized() and str(HydraConfig.get().mode) == "RunMode.MULTIRUN"


def instantiate_parts(cfg: DictConfig):
    """The datamodule and the task the config names (constructors only: no data read)."""
    datamodule = instantiate(cfg.data, augmentation=instantiate(cfg.augmentation))
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    model = instantiate(
        cfg.model, optimizer=instantiate(cfg.optimizer), scheduler=scheduler, _convert_="all"
    )
    return datamodule, model


def check_builds(cfg: DictConfig) -> None:
    """The parts built from the config (the network on the meta device: no memory) and the
    accelerator asked for present: a value only a constructor checks (data.max_len with the
    length weights, data.gap, data.glyphs, ...) is a ConfigError before any run exists."""
    check_accelerator(cfg)
    try:
        with torch.device("meta"):
            instantiate_parts(cfg)
    except Exception as e:  # Hydra wraps the constructor's error: report the constructor's
        cause = e
        while cause.__cause__ is not None:
            cause = cause.__cause__
        raise ConfigError(f"Invalid config: {first_line(cause)}") from None


def build(cfg: DictConfig):
    """Threads and seed, then the datamodule and the task from the composed config."""
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    if cfg.get("seed") is not None:
        pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    datamodule, model = instantiate_parts(cfg)
    if cfg.get("init_from"):
        init_weights(model, cfg.init_from)
    return datamodule, model


def init_weights(model: pl.LightningModule, path: str) -> None:
    """Load a checkpoint's weights into `model` (`init_from=`: fine-tuning starts a new run with
    a fresh optimizer and schedule, unlike `ckpt_path=`, which resumes the old one)."""
    state = checkpoints.load(path, "init_from").state
    try:
        model.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError) as e:
        first = first_line(e)
        raise CheckpointError(
            f"init_from={path}: its weights do not fit this model ({first}); "
            "use the same model config it was trained with"
        ) from None


def fit_and_test(cfg, model, datamodule, callbacks, **trainer_kwargs):
    """Fit, then test on the best checkpoint (the last weights when there is none).
    Returns the trainer, the last validation and the test metrics, the best checkpoint's path
    ("" if none) and the fit's seconds."""
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        default_root_dir=str(cfg.paths.output_dir),
        **trainer_kwargs,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    fit_seconds = time.perf_counter() - start
    fit_metrics = dict(trainer.callback_metrics)  # trainer.test replaces them with the test's
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    trainer.test(model, datamodule=datamodule, ckpt_path=best or None, verbose=False)
    metrics = {k: float(v) for k, v in {**fit_metrics, **trainer.callback_metrics}.items()}
    return trainer, metrics, best, fit_seconds


class Terminated(BaseException):
    """SIGTERM arrived (a scheduler's stop, `kill`): the run ends KILLED, whatever stage it is in."""


def _terminate_on_sigterm():
    """Make SIGTERM raise Terminated in the main thread (Lightning's own handler, during fit,
    calls this one too); returns what restores the previous handler."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise Terminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, test on the best checkpoint, log everything to MLflow; return the final metrics.

    With `ckpt_path=` set to a checkpoint of an earlier run, training resumes from it and goes
    on logging into that run. Under DDP (`trainer=ddp`) every process runs this; only rank 0
    tracks, logs and prints.
    """
    if _launched_rank() != 0:
        return _train_worker(cfg)
    sweep_job = in_multirun()
    if not sweep_job:  # a config mistake opens no run (digitrec-train checked it already)
        check(cfg)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    resume_run_id, start_step = checkpoints.run_of(cfg.get("ckpt_path"))
    tracker = RunTracker(cfg, resume_run_id=resume_run_id)
    log.info(
        "MLflow run %s in experiment %r (%s)", tracker.run_id, tracker.experiment_name, tracker.uri
    )
    restore = _terminate_on_sigterm()
    try:  # from here on a failure is recorded on the run (a FAILED child in a sweep)
        if not tracker.resumed:
            tracker.log_config()  # first: a run that fails shows what it was given
        tracker.start_system_metrics(cfg.tracking.get("system_metrics_interval"))
        if sweep_job:  # a bad value is a FAILED child, listed with its sweep's other jobs
            check(cfg)
        datamodule, model = build(cfg)
        _log_cost(tracker, model, cfg)
        callbacks = [*_callbacks(cfg), RunIdInCheckpoint(tracker.run_id), *tracker.callbacks()]
        trainer, metrics, best, fit_seconds = fit_and_test(
            cfg, model, datamodule, callbacks, logger=tracker.lightning_logger()
        )
        for key, value in datamodule.run_tags().items():
            tracker.set_tag(key, value)
        seen = (trainer.global_step - start_step) * datamodule.batch_size
        final = {
            "fit_seconds": fit_seconds,
            "train_sequences_per_second": seen / fit_seconds if fit_seconds > 0 else 0.0,
        }
        tracker.log_metrics(final, step=trainer.global_step)
        metrics.update(final)
        if best:
            tracker.log_artifact(best, "checkpoints")
            tracker.set_tag("best_checkpoint", Path(best).resolve())
        for artifact in model.test_artifacts(datamodule, output_dir):
            tracker.log_artifact(artifact)
        # the run's model: the weights the test read (the best checkpoint, else the last); last,
        # as it ends the run
        tested = best or getattr(trainer.checkpoint_callback, "last_model_path", "")
        tracker.log_model(tested, log_checkpoint_model)
    except BaseException as e:
        tracker.finish("KILLED" if isinstance(e, KeyboardInterrupt | Terminated) else "FAILED")
        raise
    finally:
        restore()
    tracker.finish()
    print(summary(metrics, model.headline_metrics, tracker, datamodule.n_test(), best), flush=True)
    return metrics


def _log_cost(tracker: RunTracker, model, cfg: DictConfig) -> None:
    """Parameters and multiply-adds per image: logged once (a resumed run has them)."""
    cost = model.cost()
    log.info(
        "model: %s parameters, %s multiply-adds per image",
        f"{cost['parameters']:,}",
        f"{cost['macs_per_image']:,}",
    )
    if tracker.resumed:
        tracker.set_tag("resumed_from", cfg.ckpt_path)
    else:
        tracker.log_params(cost)
        tracker.log_metrics({f"model/{k}": float(v) for k, v in cost.items()}, step=0)
    if cfg.get("init_from"):
        tracker.set_tag("init_from", cfg.init_from)


def _train_worker(cfg: DictConfig) -> dict[str, float]:
    """A DDP process other than rank 0: the same fit and test, no tracking, no output."""
    datamodule, model = build(cfg)
    # no logger here, so no callback that needs one (the learning-rate monitor)
    callbacks = [c for c in _callbacks(cfg) if not isinstance(c, pl.callbacks.LearningRateMonitor)]
    _, metrics, *_ = fit_and_test(
        cfg, model, datamodule, callbacks, logger=False, enable_progress_bar=False
    )
    return metrics
