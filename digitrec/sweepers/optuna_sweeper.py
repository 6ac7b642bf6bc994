"""`hydra/sweeper=optuna`: Optuna's ask-and-tell under Hydra's sweep interface.

Each round asks the study for `n_jobs` trials, launches them as one batch with the configured
launcher (one after another, joblib's parallel workers or SLURM jobs), and tells each trial its
job's return value: the objective `digitrec-train` returns. A job that raised, or returned
something that is not a finite number, is a FAIL trial; when more than `max_failure_rate` of
this sweep's trials have failed, the sweep stops and raises the last job's error.

The search space is written in Hydra's sweep syntax (`hydra.sweeper.params` and sweep overrides
on the command line), parsed by Hydra's own override parser:

    choice(a, b, c)  or  a,b,c    categorical
    range(3, 9)                   integers 3..8 (the stop is excluded, as everywhere in Hydra)
    range(0.1, 0.5, 0.1)          0.1, 0.2, 0.3, 0.4
    tag(log, range(1, 65))        integers 1..64 on a log scale
    interval(0.0, 0.5)            a float in [0, 0.5]
    tag(log, interval(1e-4, 1e-2))  a float in [1e-4, 1e-2] on a log scale
    shuffle(range(...))           categorical over the range's values
    model=glob(*)                 categorical over a config group's options

Anything else (`model=cnn`, `+x=1`) is passed to every job as it is.

With a `storage` the study is resumable: `n_trials` is the study's total, so running the same
sweep again runs only the trials still missing; trials that a killed sweep left RUNNING are
marked FAIL (one sweep per study at a time is assumed), and the sampler's seed moves on by the
number of finished trials so that its random start-up points are not drawn again.

Samplers (`hydra/sweeper/sampler=`): tpe (default), random, grid. The grid sampler needs
choice() or range() for every parameter and caps n_trials at the size of the grid.
Configuration keys: see OptunaSweeperConfig. Optuna is imported when a sweep starts, not when
Hydra scans its plugins.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.config_loader import ConfigLoader
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study

from digitrec.sweepers.config import (  # noqa: F401  (the configs, importable from here too)
    PLUGIN_TARGET,
    RESULTS_FILE,
    GridSamplerConfig,
    OptunaSweeperConfig,
    RandomSamplerConfig,
    TPESamplerConfig,
    register_configs,
)

log = logging.getLogger(__name__)

# ---- the search space ------------------------------------------------------------------------


def parse_space(
    params: Mapping[str, Any] | None,
    arguments: Sequence[str],
    config_loader: ConfigLoader | None = None,
) -> dict[str, Any]:
    """The sweeper's `params` and the command line's overrides, in order, key → an Optuna
    distribution (a swept key) or the override itself as a string (a fixed one). A key given
    twice keeps its last value: the command line wins over `params`. glob() needs the
    `config_loader` (Hydra's) to list a group's options."""
    lines = [f"{k}={v}" for k, v in (params or {}).items()] + list(arguments)
    space: dict[str, Any] = {}
    parser = OverridesParser.create(config_loader=config_loader)
    for override in parser.parse_overrides(lines):
        key = override.get_key_element()
        space.pop(key, None)  # a later value moves the key to the end, as Hydra would apply it
        if override.is_sweep_override():
            space[key] = distribution(override)
        else:
            space[key] = f"{key}={override.get_value_element_as_str()}"
    return space


def _rounded(x: float) -> float:
    return float(f"{x:.12g}")  # 0.1 + 3 * 0.1 = 0.4, not 0.4000000000000001


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution of one sweep override (see the module's docstring)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    line = override.input_line or override.get_key_element()
    if not (
        override.is_choice_sweep() or override.is_range_sweep() or override.is_interval_sweep()
    ):
        raise ValueError(f"{line}: the Optuna sweeper takes choice(), range() and interval()")
    value = override.value()
    if override.is_choice_sweep():
        choices = list(override.sweep_iterator())
        bad = [c for c in choices if not isinstance(c, str | int | float | bool | type(None))]
        if bad:
            raise ValueError(
                f"{line}: a choice takes strings, numbers, booleans or null, not {bad[0]!r}"
            )
        return CategoricalDistribution(choices)
    if override.is_range_sweep():
        values = list(override.sweep_iterator())
        if not values:
            raise ValueError(f"{line}: an empty range")
        if value.shuffle:
            return CategoricalDistribution(values)
        log_scale = "log" in value.tags
        low, high, step = min(values), max(values), abs(value.step)
        if all(isinstance(v, int) for v in values):
            if log_scale and step != 1:
                raise ValueError(f"{line}: a log-scale range needs step 1")
            return IntDistribution(low, high, log=log_scale, step=1 if log_scale else step)
        if log_scale:
            raise ValueError(f"{line}: a log-scale range needs integers (or use interval)")
        high = _rounded(low + (len(values) - 1) * step)
        return FloatDistribution(_rounded(low), high, step=_rounded(step))
    return FloatDistribution(float(value.start), float(value.end), log="log" in value.tags)


def grid(space: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The grid sampler's search space: every value of each swept key."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    values: dict[str, list[Any]] = {}
    for key, dist in space.items():
        if isinstance(dist, str):
            continue
        if isinstance(dist, CategoricalDistribution):
            values[key] = list(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            values[key] = list(range(dist.low, dist.high + 1, dist.step))
        elif isinstance(dist, IntDistribution):
            values[key] = list(range(dist.low, dist.high + 1))
        elif isinstance(dist, FloatDistribution) and dist.step is not None:
            n = round((dist.high - dist.low) / dist.step) + 1
            values[key] = [_rounded(dist.low + i * dist.step) for i in range(n)]
        else:
            raise ValueError(f"{key}: the grid sampler needs choice() or range(), not interval()")
    return values


def job_overrides(space: Mapping[str, Any], params: Mapping[str, Any]) -> list[str]:
    """One job's overrides: the trial's values for the swept keys, the fixed ones as given."""
    out = []
    for key, dist in space.items():
        if isinstance(dist, str):
            out.append(dist)
        else:
            out.append(f"{key}={Override._get_value_element_as_str(params[key])}")
    return out


# ---- resuming --------------------------------------------------------------------------------


def finished_trials(storage: str, study_name: str) -> int:
    """How many trials of the study are finished (complete, failed or pruned); 0 when the
    storage holds no such study. What a rerun counts against n_trials and moves the seed by."""
    import optuna

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return 0
    return sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))


def _fail_stale_trials(study: Study) -> int:
    """Mark FAIL the trials a killed sweep left RUNNING; how many there were."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
    if stale:
        log.warning(
            "Optuna study %r: trials %s were left RUNNING by an earlier sweep: marked FAIL",
            study.study_name,
            [t.number for t in stale],
        )
    return len(stale)


# ---- the sweeper -----------------------------------------------------------------------------


def _outcome(ret: JobReturn) -> tuple[float | None, str | None]:
    """(the job's objective, None) or (None, why the trial failed)."""
    if ret.status != JobStatus.COMPLETED:
        error = ret._return_value
        return None, f"{type(error).__name__}: {error}" if error is not None else "the job failed"
    try:
        value = float(ret.return_value)
    except (TypeError, ValueError):
        return None, f"the job returned {ret.return_value!r}, not a number"
    if not math.isfinite(value):
        return None, f"the job returned {value}"
    return value, None


class OptunaSweeper(Sweeper):
    """Asks Optuna for `n_jobs` trials at a time, launches them, tells their results."""

    def __init__(
        self,
        sampler: DictConfig,
        direction: str,
        storage: str | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        params: DictConfig | None,
    ) -> None:
        if str(direction) not in ("minimize", "maximize"):
            raise ValueError(f"hydra.sweeper.direction={direction}: minimize or maximize")
        if not 0.0 <= float(max_failure_rate) <= 1.0:
            raise ValueError(f"hydra.sweeper.max_failure_rate={max_failure_rate}: from 0 to 1")
        if int(n_jobs) < 1 or int(n_trials) < 0:
            raise ValueError("hydra.sweeper.n_jobs must be at least 1, n_trials at least 0")
        self.sampler_config = sampler
        self.direction = str(direction)
        self.storage = str(storage) if storage else None
        self.study_name = str(study_name) if study_name else None
        self.n_trials = int(n_trials)
        self.n_jobs = int(n_jobs)
        self.max_failure_rate = float(max_failure_rate)
        self.params = OmegaConf.to_container(params) if params is not None else {}
        self.config: DictConfig | None = None
        self.config_loader: ConfigLoader | None = None
        self.launcher = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.config_loader = hydra_context.config_loader
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def _sampler(self, space: Mapping[str, Any], seed_offset: int):
        from hydra.utils import instantiate

        cfg = self.sampler_config
        kwargs: dict[str, Any] = {}
        if cfg.get("seed") is not None:
            kwargs["seed"] = int(cfg.seed) + seed_offset
        if str(cfg.get("_target_", "")).endswith("GridSampler"):
            kwargs["search_space"] = grid(space)
        return instantiate(cfg, **kwargs)

    def _study(self, space: Mapping[str, Any]) -> tuple[Study, int]:
        """The study (loaded when the storage has it) and how many trials it had finished."""
        import optuna

        done = 0
        if self.storage and self.study_name:
            try:
                old = optuna.load_study(study_name=self.study_name, storage=self.storage)
            except KeyError:
                old = None
            if old is not None:
                if old.direction.name.lower() != self.direction:
                    raise ValueError(
                        f"Optuna study {self.study_name!r} in {self.storage} "
                        f"was created to {old.direction.name.lower()}, not to "
                        f"{self.direction}"
                    )
                done = sum(t.state.is_finished() for t in old.get_trials(deepcopy=False))
                _fail_stale_trials(old)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self.storage,
            sampler=self._sampler(space, done),
            direction=self.direction,
            load_if_exists=True,
        )
        return study, done

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        from optuna.trial import TrialState

        assert self.config is not None and self.launcher is not None, "setup() first"
        space = parse_space(self.params, arguments, self.config_loader)
        swept = {k: d for k, d in space.items() if not isinstance(d, str)}
        study, done = self._study(space)
        total = self.n_trials
        if str(self.sampler_config.get("_target_", "")).endswith("GridSampler"):
            size = math.prod(len(v) for v in grid(space).values())
            if size < total:
                log.info("the grid has %d points: n_trials %d → %d", size, total, size)
                total = size
        to_run = max(total - done, 0)
        log.info(
            "Optuna study %r (%s) has %d finished trials of %d: running %d more",
            study.study_name,
            self.storage or "in memory",
            done,
            total,
            to_run,
        )
        if done and not to_run:
            log.warning(
                "nothing to run: raise hydra.sweeper.n_trials (N_TRIALS) or start a new "
                "study with hydra.sweeper.study_name=NAME"
            )
        log.info(
            "sampler %s, %s, %d trials at a time; space: %s",
            type(study.sampler).__name__,
            self.direction,
            self.n_jobs,
            {k: repr(d) for k, d in swept.items()},
        )

        batches: list[Sequence[JobReturn]] = []
        told = failed = 0
        last_failure: JobReturn | None = None
        while to_run > 0:
            trials = [study.ask(swept) for _ in range(min(self.n_jobs, to_run))]
            overrides = [job_overrides(space, t.params) for t in trials]
            for trial, job in zip(trials, overrides, strict=True):
                trial.set_user_attr("overrides", " ".join(job))
            returns = self.launcher.launch(overrides, initial_job_idx=trials[0].number)
            batches.append(returns)
            for trial, ret in zip(trials, returns, strict=True):
                if ret.working_dir:
                    trial.set_user_attr("output_dir", str(ret.working_dir))
                value, error = _outcome(ret)
                try:
                    if error is None:
                        study.tell(trial, value)
                        log.info("trial %d: %s", trial.number, value)
                    else:
                        study.tell(trial, state=TrialState.FAIL)
                        log.warning("trial %d failed: %s", trial.number, error)
                        failed, last_failure = failed + 1, ret
                except RuntimeError as e:  # the grid sampler stops the study when it is done
                    if "Study.stop" not in str(e):
                        raise
            told += len(trials)
            to_run -= len(trials)
            if failed / told > self.max_failure_rate:
                log.error(
                    "%d of %d trials failed (more than max_failure_rate=%g): stopping the sweep",
                    failed,
                    told,
                    self.max_failure_rate,
                )
                if last_failure is not None and last_failure.status == JobStatus.FAILED:
                    last_failure.return_value  # noqa: B018 -- raises the job's own error
                raise RuntimeError(
                    f"{failed} of {told} Optuna trials failed (more than "
                    f"max_failure_rate={self.max_failure_rate:g})"
                )
        self._save_results(study)
        return batches

    def _save_results(self, study: Study) -> None:
        """optimization_results.yaml in the sweep folder: the study's best trial so far."""
        assert self.config is not None
        try:
            best = study.best_trial
        except ValueError:  # no complete trial
            log.warning("Optuna study %r has no complete trial yet", study.study_name)
            return
        results = {
            "name": "optuna",
            "study_name": study.study_name,
            "storage": self.storage,
            "direction": self.direction,
            "best_trial": best.number,
            "best_params": best.params,
            "best_value": best.value,
            "trials": len(study.get_trials(deepcopy=False)),
        }
        log.info("best trial %d: %s %s", best.number, best.value, best.params)
        path = Path(self.config.hydra.sweep.dir) / RESULTS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(results), path)
