"""The Optuna sweeper's configs: hydra/sweeper=optuna and its samplers, as structured configs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# the class Hydra instantiates: a subclass of OptunaSweeper in the hydra_plugins namespace
PLUGIN_TARGET = "hydra_plugins.digitrec_sweepers.OptunaSweeper"
RESULTS_FILE = "optimization_results.yaml"


@dataclass
class TPESamplerConfig:
    """optuna.samplers.TPESampler; None leaves Optuna's default (multivariate since Optuna 5)."""

    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None
    n_startup_trials: int = 10  # random trials before TPE models the results
    n_ei_candidates: int = 24
    multivariate: bool | None = None
    group: bool = False
    # trials asked while others run (n_jobs > 1) count as bad results: the batch spreads out
    constant_liar: bool = True


@dataclass
class RandomSamplerConfig:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None


@dataclass
class GridSamplerConfig:
    """optuna.samplers.GridSampler; its grid is the search space (choice() and range() only)."""

    _target_: str = "optuna.samplers.GridSampler"
    seed: int | None = None  # the order the grid is visited in


@dataclass
class OptunaSweeperConfig:
    _target_: str = PLUGIN_TARGET
    _recursive_: bool = False  # the sweeper builds its sampler (the seed moves on when resuming)
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])
    sampler: Any = MISSING  # hydra/sweeper/sampler: tpe | random | grid
    direction: str = "minimize"  # or maximize: of the value each job returns
    storage: str | None = None  # e.g. sqlite:///optuna.db; None: in memory, not resumable
    study_name: str | None = None
    n_trials: int = 20  # the study's total: a rerun with a storage runs only the missing ones
    n_jobs: int = 2  # trials asked at a time, launched as one batch
    max_failure_rate: float = 0.0  # stop when more than this fraction of the trials failed
    params: dict[str, str] | None = None  # the search space, in Hydra's sweep syntax


def register_configs() -> None:
    """hydra/sweeper=optuna and hydra/sweeper/sampler=tpe|random|grid."""
    store = ConfigStore.instance()
    store.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConfig, provider="digitrec")
    for name, node in (
        ("tpe", TPESamplerConfig),
        ("random", RandomSamplerConfig),
        ("grid", GridSamplerConfig),
    ):
        store.store(group="hydra/sweeper/sampler", name=name, node=node, provider="digitrec")
