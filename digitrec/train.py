"""Training entry point: `train(cfg)` is a plain function; `main` only wraps it for Hydra.

digitrec-train                                   # the default experiment (conf/train.yaml)
digitrec-train model.depth=6 trainer.max_epochs=3
digitrec-train -m optimizer.lr=1e-3,3e-3          # a sweep: one MLflow parent, a child per job
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from digitrec.data.sequences import labels_to_string
from digitrec.plots import prediction_grid
from digitrec.tracking import RunTracker

log = logging.getLogger(__name__)


def _callbacks(cfg: DictConfig) -> list[pl.Callback]:
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c]


def _launched_rank() -> int:
    """The process's rank when a DDP launcher started it (Lightning sets these for its children)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))


def _build(cfg: DictConfig):
    """Threads and seed, then the datamodule and the model from the composed config."""
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    if cfg.get("seed") is not None:
        pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    datamodule = instantiate(cfg.data, augmentation=instantiate(cfg.augmentation))
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    model = instantiate(cfg.model, optimizer=instantiate(cfg.optimizer), scheduler=scheduler,
                        _convert_="all")  # fmt: skip
    return datamodule, model


def _fit_and_test(cfg, model, datamodule, callbacks, **trainer_kwargs):
    """Fit, then test on the best checkpoint (the last weights when there is none).
    Returns the trainer, the best checkpoint's path ("" if none) and the fit's seconds."""
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks,
                                      default_root_dir=str(cfg.paths.output_dir),
                                      **trainer_kwargs)  # fmt: skip
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    fit_seconds = time.perf_counter() - start
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    trainer.test(model, datamodule=datamodule, ckpt_path=best or None, verbose=False)
    return trainer, best, fit_seconds


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, test on the best checkpoint, log everything to MLflow; return the final metrics.

    Under DDP (`trainer=ddp`) every process runs this; only rank 0 tracks, logs and prints.
    """
    if _launched_rank() != 0:
        return _train_worker(cfg)
    datamodule, model = _build(cfg)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tracker = RunTracker(cfg)
    log.info(
        "MLflow run %s in experiment %r (%s)", tracker.run_id, tracker.experiment_name, tracker.uri
    )
    try:
        cost = model.net.cost()  # parameters and multiply-adds per image
        log.info("model: %s parameters, %s multiply-adds per image",
                 f"{cost['parameters']:,}", f"{cost['macs_per_image']:,}")  # fmt: skip
        tracker.log_config(cost)
        tracker.log_metrics({f"model/{k}": float(v) for k, v in cost.items()}, step=0)
        trainer, best, fit_seconds = _fit_and_test(cfg, model, datamodule, _callbacks(cfg),
                                                   logger=tracker.lightning_logger())  # fmt: skip
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        if getattr(datamodule, "rendered", False):  # digitrec-data street: not SVHN
            tracker.set_tag("synthetic_data", "rendered street numbers (not SVHN)")
            log.warning("data: rendered street numbers (SYNTHETIC stand-in, not SVHN)")
        seen = trainer.global_step * datamodule.batch_size
        final = {
            "fit_seconds": fit_seconds,
            "train_sequences_per_second": seen / fit_seconds if fit_seconds > 0 else 0.0,
        }
        tracker.log_metrics(final, step=trainer.global_step)
        metrics.update(final)
        if best:
            tracker.log_artifact(best, "checkpoints")
            tracker.set_tag("best_checkpoint", Path(best).resolve())
        if model.test_predictions:
            grid = _prediction_grid(model, datamodule, output_dir / "test_predictions.png")
            tracker.log_artifact(grid)
    except BaseException as e:
        tracker.finish("KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        raise
    tracker.finish()
    _summary(metrics, tracker, datamodule, best)
    return metrics


def _train_worker(cfg: DictConfig) -> dict[str, float]:
    """A DDP process other than rank 0: the same fit and test, no tracking, no output."""
    datamodule, model = _build(cfg)
    # no logger here, so no callback that needs one (the learning-rate monitor)
    callbacks = [c for c in _callbacks(cfg) if not isinstance(c, pl.callbacks.LearningRateMonitor)]
    trainer, _, _ = _fit_and_test(cfg, model, datamodule, callbacks, logger=False,
                                  enable_progress_bar=False)  # fmt: skip
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def _prediction_grid(model, datamodule, path: Path) -> Path:
    p = model.test_predictions
    s = datamodule.test_set
    pred = [
        labels_to_string(d, n)
        for d, n in zip(p["digits"].numpy(), p["length"].numpy(), strict=True)
    ]
    n = len(pred)  # fewer than the test set when trainer.limit_test_batches cuts it short
    return prediction_grid(s.images[:n], s.numbers()[:n], pred, p["confidence"].numpy(), path)


def _summary(metrics: dict[str, float], tracker: RunTracker, datamodule, best: str) -> None:
    n = len(datamodule.test_set) if datamodule.test_set is not None else 0
    lines = [
        "",
        f"test sequence accuracy  {metrics.get('test/sequence_accuracy', float('nan')):.2%}"
        f"  ({n:,} test sequences)",
        f"coverage at 98% acc.    {metrics.get('test/coverage_at_98', float('nan')):.2%}",
        f"per-digit accuracy      {metrics.get('test/digit_accuracy', float('nan')):.2%}",
        f"training                {metrics['fit_seconds']:.0f} s, "
        f"{metrics['train_sequences_per_second']:.0f} sequences/s",
        f"MLflow run              {tracker.run_id}  (experiment {tracker.experiment_name!r})",
    ]
    if best:
        lines.append(f"best checkpoint         {best}")
    lines.append(f"open the UI              {tracker.ui_hint()}")
    print("\n".join(lines), flush=True)


CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")  # the repository's conf/


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    objective = cfg.tracking.get("objective")
    return metrics.get(objective) if objective else None  # what a sweeper optimises


if __name__ == "__main__":
    main()
