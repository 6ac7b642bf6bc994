"""Training entry point: `train(cfg)` is a plain function; `main` only wraps it for Hydra.

digitrec-train                                   # the default experiment (conf/train.yaml)
digitrec-train model.depth=6 trainer.max_epochs=3
digitrec-train -m optimizer.lr=1e-3,3e-3          # a sweep: one MLflow parent, a child per job

Before Hydra creates an output folder or a run opens, `main` composes the config, checks its
values (digitrec/config_check.py) and probes the tracking store; a mistake there is one line on
stderr and exit status 2 (config) or 1 (tracking store). An expected failure later (tracking
store, data files, checkpoints) is one line on stderr, exit status 1, and the traceback in the
job's log (train.log in the output folder); the run is FAILED in MLflow. HYDRA_FULL_ERROR=1
shows every traceback on the terminal instead.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import sqlite3
import sys
import time
import zipfile
import zlib
from pathlib import Path

import hydra
import numpy as np
import pytorch_lightning as pl
import requests
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, OverrideParseException
from hydra.utils import instantiate
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, open_dict
from sqlalchemy.exc import SQLAlchemyError

from digitrec.config_check import ConfigError, check
from digitrec.data import suites as suite_configs
from digitrec.data.download import atomic_write_bytes
from digitrec.data.sequences import labels_to_string
from digitrec.data.suites import suite_names
from digitrec.evaluate import evaluate_suites, suite_base
from digitrec.module import BoxLocalizer
from digitrec.plots import box_grid, prediction_grid
from digitrec.tracking import RunTracker, TrackingError, probe_store

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
    model = instantiate(
        cfg.model, optimizer=instantiate(cfg.optimizer), scheduler=scheduler, _convert_="all"
    )
    if cfg.get("init_from"):
        init_weights(model, cfg.init_from)
    return datamodule, model


def _suites(cfg: DictConfig, datamodule) -> list[suite_configs.Suite]:
    """The selected evaluation suites (`eval=[...]`, conf/eval/), checked before training; only
    datamodules of synthetic sequences (with a glyph test split) have them."""
    if not cfg.get("eval") or not hasattr(datamodule, "load_glyphs"):
        return []
    return suite_configs.from_configs(cfg.eval, suite_base(datamodule.spec))


class CheckpointError(ValueError):
    """A checkpoint file that does not load (not a checkpoint, corrupt, or unsafe to unpickle)."""


def load_checkpoint(path: str, key: str, needs: tuple[str, ...] = ("state_dict",)) -> dict:
    """A Lightning checkpoint's dict, loaded weights-only on the CPU (memory-mapped when it is in
    torch's zip format; older pickle-format files load too). `key` names the config key in the
    one-line errors: FileNotFoundError when missing, CheckpointError when it is not a checkpoint
    or lacks one of the entries `needs`."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{key}={path}: no such checkpoint file")
    try:
        state = torch.load(
            path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path)
        )
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise CheckpointError(
            f"{key}={path}: not a readable PyTorch checkpoint ({_checkpoint_problem(e)})"
        ) from e
    missing = [k for k in needs if k not in state] if isinstance(state, dict) else list(needs)
    if missing:
        raise CheckpointError(
            f"{key}={path}: not a Lightning checkpoint (no {missing[0]!r} in "
            f"it); save one with Lightning's Trainer or ModelCheckpoint"
        )
    return state


def _checkpoint_problem(e: Exception) -> str:
    """What torch.load's error says is wrong, in a few words (its messages open with advice)."""
    text = str(e)
    if "WeightsUnpickler error:" in text:  # a pickle a weights-only load refuses
        detail = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation")[0]
        return f"a weights-only load refuses it: {' '.join(detail.split()).split('. ')[0]}"
    if isinstance(e, EOFError):
        return "the file ends too soon"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first.split(". ")[0] if first else type(e).__name__


def init_weights(model: pl.LightningModule, path: str) -> None:
    """Load a checkpoint's weights into `model` (`init_from=`: fine-tuning starts a new run with
    a fresh optimizer and schedule, unlike `ckpt_path=`, which resumes the old one)."""
    state = load_checkpoint(path, "init_from")
    try:
        model.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"init_from={path}: its weights do not fit this model ({first}); "
            "use the same model config it was trained with"
        ) from None


def _fit_and_test(cfg, model, datamodule, callbacks, **trainer_kwargs):
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
    state = load_checkpoint(path, "ckpt_path", needs=("state_dict", "pytorch-lightning_version"))
    return state.get(RUN_ID_KEY), int(state.get("global_step", 0))


def _in_multirun() -> bool:
    return HydraConfig.initialized() and str(HydraConfig.get().mode) == "RunMode.MULTIRUN"


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, test on the best checkpoint, log everything to MLflow; return the final metrics.

    With `ckpt_path=` set to a checkpoint of an earlier run, training resumes from it and goes
    on logging into that run. Under DDP (`trainer=ddp`) every process runs this; only rank 0
    tracks, logs and prints.
    """
    if _launched_rank() != 0:
        return _train_worker(cfg)
    sweep_job = _in_multirun()
    if not sweep_job:  # a config mistake opens no run (digitrec-train checked it already)
        check(cfg)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    resume_run_id, start_step = checkpoint_meta(cfg.get("ckpt_path"))
    tracker = RunTracker(cfg, resume_run_id=resume_run_id)
    log.info(
        "MLflow run %s in experiment %r (%s)", tracker.run_id, tracker.experiment_name, tracker.uri
    )
    try:  # from here on a failure is recorded on the run (a FAILED child in a sweep)
        if not tracker.resumed:
            tracker.log_config()  # first: a run that fails shows what it was given
        tracker.start_system_metrics(cfg.tracking.get("system_metrics_interval"))
        if sweep_job:  # a bad value is a FAILED child, listed with its sweep's other jobs
            check(cfg)
        datamodule, model = _build(cfg)
        suites = _suites(cfg, datamodule)
        cost = model.net.cost()  # parameters and multiply-adds per image
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
        callbacks = [*_callbacks(cfg), _RunIdInCheckpoint(tracker.run_id), *tracker.callbacks()]
        logger = tracker.lightning_logger()
        trainer, metrics, best, fit_seconds = _fit_and_test(
            cfg, model, datamodule, callbacks, logger=logger
        )
        if suites:  # after the test set, on the same (best) weights
            data = datamodule.load_glyphs()
            suite_metrics = evaluate_suites(
                model, suites, data["test_images"], data["test_labels"], datamodule.eval_batch_size
            )
            tracker.log_metrics(suite_metrics, step=trainer.global_step)
            tracker.log_datasets(lambda: datamodule.describe_suites(suites))
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
            tracker.log_artifact(
                box_grid(
                    datamodule.test_set.images,
                    p["target"].numpy(),
                    p["box"].numpy(),
                    p["iou"].numpy(),
                    output_dir / "test_boxes.png",
                )
            )
        elif model.test_predictions:
            grid = _prediction_grid(model, datamodule, output_dir / "test_predictions.png")
            tracker.log_artifact(grid)
            tracker.log_artifact(_confidences(model.test_predictions, output_dir))
        # the run's model: the weights the test read (the best checkpoint, else the last); last,
        # as it ends the run
        tested = best or getattr(trainer.checkpoint_callback, "last_model_path", "")
        tracker.log_model(tested, localizer=isinstance(model, BoxLocalizer))
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
    _, metrics, *_ = _fit_and_test(
        cfg, model, datamodule, callbacks, logger=False, enable_progress_bar=False
    )
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
    np.savez_compressed(
        buffer, confidence=predictions["confidence"].numpy(), correct=predictions["correct"].numpy()
    )
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
    if tracker.model_uri:
        lines.append(f"MLflow model            {tracker.model_uri}")
    lines.append(f"open the UI              {tracker.ui_hint()}")
    lines += _suite_table(metrics)
    print("\n".join(lines), flush=True)


def _suite_table(metrics: dict[str, float]) -> list[str]:
    """The evaluation suites' figures: one line each, sequence accuracy per length after it."""
    names = suite_names(metrics)
    if not names:
        return []
    lines = [
        "",
        f"{'evaluation suite':<20}{'n':>7}{'sequence':>10}{'digit':>8}{'length':>8}"
        "   sequence accuracy by length",
    ]
    for name in names:
        m = {k.split("/")[2]: v for k, v in metrics.items() if k.startswith(f"suite/{name}/")}
        by_length = "  ".join(
            f"{k.removeprefix('sequence_accuracy_len')}: {v:.2%}"
            for k, v in sorted(m.items())
            if k.startswith("sequence_accuracy_len")
        )
        lines.append(
            f"{name:<20}{int(m.get('n', 0)):>7,}{m['sequence_accuracy']:>10.2%}"
            f"{m['digit_accuracy']:>8.2%}{m['length_accuracy']:>8.2%}   {by_length}"
        )
    return lines


CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")  # the repository's conf/


# The failures digitrec-train reports in one line (the traceback goes to the job's log): the
# config, the tracking store, data and checkpoint files, the file system. Anything else is a bug
# and keeps its traceback on the terminal.
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
    tracking = (MlflowException, SQLAlchemyError, sqlite3.Error, requests.RequestException)
    if isinstance(e, HydraException):  # with the OmegaConf error under it ("Key 'x' is not ...")
        text = text.split(" Config search path:")[0]
        cause = str(e.__cause__ or "").strip().splitlines()
        text += f" ({cause[0]})" if cause and cause[0] not in text else ""
        if isinstance(e, OverrideParseException):  # "mismatched input '=' ..." in which one
            text = f"cannot parse {e.override!r}: {text.split(' See https://')[0]}"
    elif isinstance(e, tracking):
        text = f"tracking store: {' '.join(text.split('[SQL:')[0].split())}"  # no SQL statement
    elif not isinstance(e, ValueError | TrackingError) or not text:
        text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def _log_failure(e: BaseException) -> str:
    """Write the failure's traceback to the job's log file only (not the console); its path."""
    record = log.makeRecord(
        log.name,
        logging.ERROR,
        __file__,
        0,
        "digitrec-train: %s",
        (describe(e),),
        (type(e), e, e.__traceback__),
    )
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    for handler in files:
        handler.handle(record)
        handler.flush()
    if files:
        return files[0].baseFilename
    path = Path(HydraConfig.get().runtime.output_dir) / "train_error.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(logging.Formatter().format(record) + "\n")
    return str(path)


class _Failure:
    """A single run's expected failure, reported by main after Hydra returns."""

    error: BaseException | None = None


# marks a HYDRA_FULL_ERROR=1 that main set (to get Hydra's errors raised), not the user
_SET_BY_MAIN = "DIGITREC_TRAIN_SET_HYDRA_FULL_ERROR"


def _full_errors() -> bool:
    """The user asked for every traceback on the terminal (HYDRA_FULL_ERROR=1)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1" and _SET_BY_MAIN not in os.environ


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    # A job that raises is a FAILED MLflow run; in a sweep, Hydra's launchers catch it and the
    # sweep goes on (Optuna: a FAIL trial; the basic sweeper raises once every job has run).
    try:
        metrics = train(cfg)
    except Exception as e:
        if not expected(e) or _full_errors():
            raise
        e.train_log = _log_failure(e)  # for main's line (kept when a joblib worker pickles it)
        if _in_multirun():
            raise
        _Failure.error = e  # one line from main, without Hydra's report of a failed job
        return None
    objective = cfg.tracking.get("objective")
    if objective and objective not in metrics:
        log.warning("objective %r is not among the run's metrics %s", objective, sorted(metrics))
    return metrics.get(objective) if objective else None  # what a sweeper optimises


# Hydra's flags that do not run a job, and those that move the config (left to Hydra)
_NO_PRECHECK = (
    "help",
    "hydra_help",
    "cfg",
    "info",
    "shell_completion",
    "experimental_rerun",
    "config_path",
    "config_dir",
)


def precheck(args: list[str]) -> DictConfig | None:
    """Compose the config as Hydra will for `args`, check its values and probe its tracking
    store, creating nothing (ConfigError, HydraException or TrackingError). A sweep (`-m`) is
    composed without its swept values (each job checks its own); None when not checked."""
    from hydra._internal.utils import get_args_parser

    parsed = get_args_parser().parse_args(args)
    if any(getattr(parsed, name) for name in _NO_PRECHECK):
        return None
    swept = [
        o.is_sweep_override() for o in OverridesParser.create().parse_overrides(parsed.overrides)
    ]
    sweep = parsed.multirun or any(swept)  # (without -m: hydra.mode=MULTIRUN, or Hydra says no)
    overrides = [o for o, is_swept in zip(parsed.overrides, swept, strict=True) if not is_swept]
    GlobalHydra.instance().clear()
    previous = HydraConfig.instance().cfg
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3", job_name="train"):
            cfg = compose(
                parsed.config_name or "train", overrides=overrides, return_hydra_config=True
            )
        with open_dict(cfg):
            cfg.hydra.runtime.cwd = os.getcwd()
            cfg.hydra.runtime.output_dir = os.path.join(os.getcwd(), "<output folder>")  # not made
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        check(cfg)
        probe_store(str(cfg.tracking.uri))
    except HydraException:
        if sweep:  # a key only a swept config group has: the jobs compose it
            return None
        raise
    finally:
        HydraConfig.instance().cfg = previous
        GlobalHydra.instance().clear()
    return cfg


@contextlib.contextmanager
def _hydra_args(args: list[str]):
    """sys.argv for Hydra, and its errors raised to us rather than printed with a traceback."""
    argv, saved = sys.argv, {k: os.environ.get(k) for k in ("HYDRA_FULL_ERROR", _SET_BY_MAIN)}
    sys.argv = [argv[0] if argv else "digitrec-train", *args]
    if os.environ.get("HYDRA_FULL_ERROR") != "1":  # inherited by DDP's processes and joblib's
        os.environ.update({"HYDRA_FULL_ERROR": "1", _SET_BY_MAIN: "1"})
    try:
        yield
    finally:
        sys.argv = argv
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main(argv: list[str] | None = None) -> None:
    """digitrec-train [-m] [overrides]: one line on stderr and a non-zero exit status for a bad
    config value (2), an unusable tracking store, data or checkpoint file (1)."""
    args = list(sys.argv[1:] if argv is None else argv)
    full = _full_errors()
    _Failure.error = None
    try:
        precheck(args)
        with _hydra_args(args):
            _hydra_main()
        if _Failure.error is not None:
            raise _Failure.error
    except Exception as e:
        if full or not expected(e):
            raise
        where = f" (traceback in {e.train_log})" if getattr(e, "train_log", None) else ""
        print(f"digitrec-train: {describe(e)}{where}", file=sys.stderr, flush=True)
        sys.exit(2 if isinstance(e, ConfigError | HydraException) else 1)
    finally:
        _Failure.error = None


if __name__ == "__main__":
    main()
