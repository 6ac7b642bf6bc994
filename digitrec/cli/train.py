"""digitrec-train: compose the config with Hydra, check it, then run `train(cfg)`.

digitrec-train                                   # the default experiment (conf/train.yaml)
digitrec-train model.depth=6 trainer.max_epochs=3
digitrec-train -m optimizer.lr=1e-3,3e-3          # a sweep: one MLflow parent, a child per job

Before Hydra creates an output folder or a run opens, `main` composes the config, checks its
values (digitrec/training/config_check.py) and probes the tracking store; a mistake there is one
line on stderr and exit status 2 (config) or 1 (tracking store). An expected failure later
(tracking store, data files, checkpoints) is one line on stderr, exit status 1, and the traceback
in the job's log (train.log in the output folder); the run is FAILED in MLflow. HYDRA_FULL_ERROR=1
shows every traceback on the terminal instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, open_dict

from digitrec.paths import CONF_DIR as _CONF_DIR
from digitrec.tracking import probe_store
from digitrec.training.config_check import ConfigError, check
from digitrec.training.errors import describe, expected
from digitrec.training.train import check_builds, train
from digitrec.training.train import in_multirun as _in_multirun

log = logging.getLogger(__name__)
CONF_DIR = str(_CONF_DIR)


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


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
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
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3", job_name="train"):
            cfg = compose(
                parsed.config_name or "train", overrides=overrides, return_hydra_config=True
            )
        with open_dict(cfg):
            cfg.hydra.runtime.cwd = os.getcwd()
            cfg.hydra.runtime.output_dir = os.path.join(os.getcwd(), "<output folder>")  # not made
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        check(cfg)
        if not sweep:  # a sweep's jobs build their own (a bad value: a FAILED child)
            check_builds(cfg)
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
