"""Training entry point: `train(cfg)` is a plain function; `main` only wraps it for Hydra.

digitrec-train                                   # the default experiment (conf/train.yaml)
digitrec-train model.depth=6 trainer.max_epochs=3
digitrec-train -m optimizer.lr=1e-3,3e-3          # a sweep: one MLflow parent, a child per job
"""

from __future__ import annotations

import io
import logging
import os
import time
from pathlib import Path

import hydra
import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from digitrec.data import suites as suite_configs
from digitrec.data.download import atomic_write_bytes
from digitrec.data.sequences import labels_to_string
from digitrec.data.suites import suite_names
from digitrec.evaluate import evaluate_suites, suite_base
from digitrec.module import BoxLocalizer
from digitrec.plots import box_grid, prediction_grid
from digitrec.tracking import RunTracker

log = logging.getLogger(__name__)
RUN_ID_KEY = "mlflow_run_id"


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
    if cfg.get("init_from"):
        init_weights(model, cfg.init_from)
    return datamodule, model


def _suites(cfg: DictConfig, datamodule) -> list[suite_configs.Suite]:
    """The selected evaluation suites (`eval=[...]`, conf/eval/), checked before training; only
    datamodules of synthetic sequences (with a glyph test split) have them."""
    if not cfg.get("eval") or not hasattr(datamodule, "load_glyphs"):
        return []
    return suite_configs.from_configs(cfg.eval, suite_base(datamodule.spec))


def init_weights(model: pl.LightningModule, path: str) -> None:
    """Load a checkpoint's weights into `model` (`init_from=`: fine-tuning starts a new run with
    a fresh optimizer and schedule, unlike `ckpt_path=`, which resumes the old one)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"init_from={path}: no such checkpoint file")
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    try:
        model.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"init_from={path}: its weights do not fit this model ({first}); "
                         "use the same model config it was trained with") from None  # fmt: skip


def _fit_and_test(cfg, model, datamodule, callbacks, **trainer_kwargs):
    """Fit, then test on the best checkpoint (the last weights when there is none).
    Returns the trainer, the last validation and the test metrics, the best checkpoint's path
    ("" if none) and the fit's seconds."""
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks,
                                      default_root_dir=str(cfg.paths.output_dir),
                                      **trainer_kwargs)  # fmt: skip
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    fit_seconds = time.perf_counter() - start
    fit_metrics = dict(trainer.callback_metrics)  # trainer.test replaces them with the test's
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    trainer.test(model, datamodule=datamodule, ckpt_path=best or None, verbose=False)
    metrics = {k: float(v) for k, v in {**fit_metrics, **trainer.callback_metrics}.items()}
    return trainer, metrics, best, fit_seconds


class _RunIdInCheckpoint(pl.Callback):
    """Writes the MLflow run id into every checkpoint, so `ckpt_path=` resumes into that run."""

    def __init__(self, run_id: str):
        self.run_id = run_id

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[RUN_ID_KEY] = self.run_id


def checkpoint_meta(path: str | None) -> tuple[str | None, int]:
    """(the MLflow run a checkpoint was written by or None, its global step); (None, 0) for none."""
    if not path:
        return None, 0
    if not Path(path).is_file():
        raise FileNotFoundError(f"ckpt_path={path}: no such checkpoint file")
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return state.get(RUN_ID_KEY), int(state.get("global_step", 0))


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, test on the best checkpoint, log everything to MLflow; return the final metrics.

    With `ckpt_path=` set to a checkpoint of an earlier run, training resumes from it and goes
    on logging into that run. Under DDP (`trainer=ddp`) every process runs this; only rank 0
    tracks, logs and prints.
    """
    if _launched_rank() != 0:
        return _train_worker(cfg)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    resume_run_id, start_step = checkpoint_meta(cfg.get("ckpt_path"))
    tracker = RunTracker(cfg, resume_run_id=resume_run_id)
    log.info(
        "MLflow run %s in experiment %r (%s)", tracker.run_id, tracker.experiment_name, tracker.uri
    )
    try:  # from here on a failure is recorded on the run (a FAILED child in a sweep)
        datamodule, model = _build(cfg)
        suites = _suites(cfg, datamodule)
        cost = model.net.cost()  # parameters and multiply-adds per image
        log.info("model: %s parameters, %s multiply-adds per image",
                 f"{cost['parameters']:,}", f"{cost['macs_per_image']:,}")  # fmt: skip
        if tracker.resumed:
            tracker.set_tag("resumed_from", cfg.ckpt_path)
        else:
            tracker.log_config(cost)
            tracker.log_metrics({f"model/{k}": float(v) for k, v in cost.items()}, step=0)
        if cfg.get("init_from"):
            tracker.set_tag("init_from", cfg.init_from)
        callbacks = [*_callbacks(cfg), _RunIdInCheckpoint(tracker.run_id)]
        logger = tracker.lightning_logger()
        trainer, metrics, best, fit_seconds = _fit_and_test(
            cfg, model, datamodule, callbacks, logger=logger
        )
        if suites:  # after the test set, on the same (best) weights
            data = datamodule.load_glyphs()
            suite_metrics = evaluate_suites(model, suites, data["test_images"],
                                            data["test_labels"], datamodule.eval_batch_size)  # fmt: skip
            tracker.log_metrics(suite_metrics, step=trainer.global_step)
            metrics.update(suite_metrics)
        if getattr(datamodule, "rendered", False):  # digitrec-data street: not SVHN
            tracker.set_tag("synthetic_data", "rendered street numbers (not SVHN)")
            log.warning("data: rendered street numbers (SYNTHETIC stand-in, not SVHN)")
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
        if model.test_predictions and isinstance(model, BoxLocalizer):
            p = model.test_predictions
            tracker.log_artifact(box_grid(datamodule.test_set.images, p["target"].numpy(),
                                          p["box"].numpy(), p["iou"].numpy(),
                                          output_dir / "test_boxes.png"))  # fmt: skip
        elif model.test_predictions:
            grid = _prediction_grid(model, datamodule, output_dir / "test_predictions.png")
            tracker.log_artifact(grid)
            tracker.log_artifact(_confidences(model.test_predictions, output_dir))
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
    _, metrics, *_ = _fit_and_test(cfg, model, datamodule, callbacks, logger=False,
                                   enable_progress_bar=False)  # fmt: skip
    return metrics


def _prediction_grid(model, datamodule, path: Path) -> Path:
    p = model.test_predictions
    s = datamodule.test_set
    pred = [
        labels_to_string(d, n)
        for d, n in zip(p["digits"].numpy(), p["length"].numpy(), strict=True)
    ]
    n = len(pred)  # fewer than the test set when trainer.limit_test_batches cuts it short
    return prediction_grid(s.images[:n], s.numbers()[:n], pred, p["confidence"].numpy(), path)


def _confidences(predictions: dict, output_dir: Path) -> Path:
    """test_confidence.npz: each test answer's confidence and whether it was right (for
    accuracy-vs-coverage curves)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, confidence=predictions["confidence"].numpy(),
                        correct=predictions["correct"].numpy())  # fmt: skip
    path = output_dir / "test_confidence.npz"
    atomic_write_bytes(path, buffer.getvalue())
    return path


# the headline test metrics a run prints at the end, those it has (readers or localizers)
HEADLINES = {
    "test/sequence_accuracy": "test sequence accuracy",
    "test/coverage_at_98": "coverage at 98% acc.",
    "test/digit_accuracy": "per-digit accuracy",
    "test/mean_iou": "test mean IoU",
    "test/iou50": "test boxes IoU >= 0.5",
}


def _summary(metrics: dict[str, float], tracker: RunTracker, datamodule, best: str) -> None:
    n = len(datamodule.test_set.box) if datamodule.test_set is not None else 0
    lines = [""] + [
        f"{label:<24}{metrics[k]:.2%}" for k, label in HEADLINES.items() if k in metrics
    ]
    lines += [
        f"test set                {n:,} images",
        f"training                {metrics['fit_seconds']:.0f} s, "
        f"{metrics['train_sequences_per_second']:.0f} sequences/s",
        f"MLflow run              {tracker.run_id}  (experiment {tracker.experiment_name!r})",
    ]
    if best:
        lines.append(f"best checkpoint         {best}")
    lines.append(f"open the UI              {tracker.ui_hint()}")
    lines += _suite_table(metrics)
    print("\n".join(lines), flush=True)


def _suite_table(metrics: dict[str, float]) -> list[str]:
    """The evaluation suites' figures: one line each, sequence accuracy per length after it."""
    names = suite_names(metrics)
    if not names:
        return []
    lines = ["", f"{'evaluation suite':<20}{'n':>7}{'sequence':>10}{'digit':>8}{'length':>8}"
             "   sequence accuracy by length"]  # fmt: skip
    for name in names:
        m = {k.split("/")[2]: v for k, v in metrics.items() if k.startswith(f"suite/{name}/")}
        by_length = "  ".join(f"{k.removeprefix('sequence_accuracy_len')}: {v:.2%}"
                              for k, v in sorted(m.items()) if k.startswith("sequence_accuracy_len"))  # fmt: skip
        lines.append(f"{name:<20}{int(m.get('n', 0)):>7,}{m['sequence_accuracy']:>10.2%}"
                     f"{m['digit_accuracy']:>8.2%}{m['length_accuracy']:>8.2%}   {by_length}")  # fmt: skip
    return lines


CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")  # the repository's conf/


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    # A job that raises is a FAILED MLflow run; in a sweep, Hydra's launchers catch it and the
    # sweep goes on (Optuna: a FAIL trial; the basic sweeper raises once every job has run).
    metrics = train(cfg)
    objective = cfg.tracking.get("objective")
    if objective and objective not in metrics:
        log.warning("objective %r is not among the run's metrics %s", objective, sorted(metrics))
    return metrics.get(objective) if objective else None  # what a sweeper optimises


if __name__ == "__main__":
    main()
