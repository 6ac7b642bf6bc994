"""Sweeps: a Hydra multirun as one MLflow parent run with its jobs nested under it, Optuna's
study resumed, the sweep's best run picked (`best_run`, the one rule for every command) and
registered in the Model Registry (`register_model`)."""

from __future__ import annotations

import atexit
import json
import logging
import math
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from digitrec.io import atomic_write_text
from digitrec.tracking.store import (
    MAX_PARAM_LEN,
    PARENT_FILE,
    PARENT_TAG,
    experiment_id,
    git_commit,
)

log = logging.getLogger(__name__)

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
    return client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'",
        order_by=order_by,
        max_results=50000,
    )


def latest_sweep(client: MlflowClient, experiment_id: str, finished_only: bool = False):
    """The newest sweep parent run of an experiment (None if it has none)."""
    query = "tags.sweep = 'true'" + (" and attributes.status = 'FINISHED'" if finished_only else "")
    found = client.search_runs([experiment_id], query, order_by=["start_time DESC"], max_results=1)
    return found[0] if found else None


def run_overrides(run) -> dict[str, str]:
    """The Hydra overrides a run was started with (its `hydra_overrides` tag), as key → value."""
    pairs = (
        item.split("=", 1)
        for item in run.data.tags.get("hydra_overrides", "").split()
        if "=" in item
    )
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
                [exp],
                f"tags.sweep = 'true' and tags.optuna_study = '{tags['optuna_study']}'",
                order_by=["start_time DESC"],
                max_results=1,
            )
            if found:  # the same study again: continue its parent run
                parent_id = found[0].info.run_id
                client.update_run(parent_id, status="RUNNING")
                for key in ("sweep_dir", "sampler", "git_commit"):
                    client.set_tag(parent_id, key, tags[key])
        if parent_id is None and config.tracking.get("sweep_parent"):
            parent_id = str(config.tracking.sweep_parent)  # continue it with the missing jobs
            try:
                client.get_run(parent_id)
            except MlflowException:
                raise ValueError(
                    f"tracking.sweep_parent={parent_id}: no such run in {config.tracking.uri}"
                ) from None
            client.update_run(parent_id, status="RUNNING")
            for key in ("sweep_dir", "git_commit"):
                client.set_tag(parent_id, key, tags[key])
        if parent_id is None:
            parent_id = client.create_run(exp, tags=tags).info.run_id
        sweep_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(sweep_dir / PARENT_FILE, parent_id)
        log.info(
            "MLflow sweep parent run %s (experiment %s)", parent_id, config.tracking.experiment
        )
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
        parent = client.get_run(parent_id)
        keys = list(search_space(config))
        if config.tracking.get("sweep_parent"):  # continued: the keys the sweep first searched
            try:
                keys = list(json.loads(parent.data.tags.get("search_space", ""))) or keys
            except ValueError:  # a search space too long for its tag: this run's keys
                pass
        summary = record_best(
            client,
            parent,
            str(config.tracking.objective),
            str(config.tracking.get("objective_mode", "max")) == "max",
            keys,
            status=status,
        )
        if status:
            log.warning("sweep did not complete: %s", summary)
        else:
            log.info("%s; compare: digitrec-compare %s", summary, parent_id)


def objective_value(run, objective: str) -> float | None:
    """The run's `objective` metric, None when it has none or it is not a finite number."""
    value = run.data.metrics.get(objective)
    return value if value is not None and math.isfinite(value) else None


def best_run(runs, objective: str, maximize: bool = True):
    """The best of `runs` by `objective`: the FINISHED runs with a finite value, the first of
    equals in the given order; None when there is none. Every command that picks a sweep's best
    run (the sweep's parent tags, digitrec-compare, digitrec-reproduce) asks this."""
    scored = [
        r for r in runs if r.info.status == "FINISHED" and objective_value(r, objective) is not None
    ]
    sign = 1 if maximize else -1
    return max(scored, key=lambda r: sign * objective_value(r, objective), default=None)


def record_best(
    client: MlflowClient,
    parent,
    objective: str,
    maximize: bool,
    keys: list[str],
    status: str | None = None,
) -> str:
    """Tag the parent with its best child (run id, params, metric) and close it: FINISHED unless
    every child failed, or `status`."""
    parent_id = parent.info.run_id
    children = children_of(client, parent)
    failed = sum(c.info.status == "FAILED" for c in children)
    client.set_tag(parent_id, "children", len(children))
    client.set_tag(parent_id, "children_failed", failed)
    summary = f"{len(children)} jobs, {failed} failed"
    best = best_run(children, objective, maximize)
    if best is not None:
        value = objective_value(best, objective)
        params = {k: best.data.params.get(k, "?") for k in keys}
        tags = {
            "best_run_id": best.info.run_id,
            "best_params": json.dumps(params, sort_keys=True),
            "best_overrides": best.data.tags.get("hydra_overrides", ""),
        }
        tags.update({f"best.{k}": v for k, v in params.items()})
        for key, text in tags.items():
            client.set_tag(parent_id, key, text[:MAX_PARAM_LEN])
        client.log_metric(parent_id, f"best/{objective}", value, step=len(children))
        summary += f"; best {objective} = {value:.4f} (run {best.info.run_id}: {params})"
    all_failed = not children or failed == len(children)
    client.set_terminated(parent_id, status or ("FAILED" if all_failed else "FINISHED"))
    return summary


def logged_model_id(client: MlflowClient, run, name: str = "model") -> str | None:
    """The id of the MLflow model the run logged as `name` (runs:/<id>/<name>; the last one
    when it logged several), None when it logged none."""
    outputs = run.outputs.model_outputs if run.outputs is not None else []
    for output in sorted(outputs, key=lambda o: o.step, reverse=True):
        if client.get_logged_model(output.model_id).name == name:
            return output.model_id
    return None


def register_model(
    client: MlflowClient,
    run,
    name: str,
    alias: str = "champion",
    tags: dict[str, str] | None = None,
):
    """Register the run's logged `model` as a new version of the registered model `name` (made
    when missing) and point `alias` at it; the ModelVersion, None when the run logged no model."""
    model_id = logged_model_id(client, run)
    if model_id is None:
        return None
    try:
        client.create_registered_model(name)
    except MlflowException as e:
        if e.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    version = client.create_model_version(
        name, f"models:/{model_id}", run.info.run_id, tags=tags, model_id=model_id
    )
    client.set_registered_model_alias(name, alias, version.version)
    return version
