"""MLflow tracking: one experiment per study, one run per training job, one parent run per sweep.

The default store is embedded: a SQLite file in the project directory with artifacts beside it;
any other tracking URI (an `mlflow server`, databricks, ...) comes from `tracking.uri` or the
MLFLOW_TRACKING_URI environment variable. A Hydra multirun creates its parent run in
`SweepParentRun.on_multirun_start` (launcher process) and leaves its id in the sweep directory,
where every job — in the same process, a joblib worker, or a cluster node — finds it.

store: URIs, probes, clients, experiments (tagged for MLflow's model-training view), logging
helpers; runs: a training job's run (RunTracker: name, datasets, system metrics, throughput,
its best model); sweeps: parent runs, Optuna, the best run (`best_run`) and its registration;
datasets and models: what runs log as dataset inputs and as their MLflow model. Everything is
importable from here.
"""

import atexit  # noqa: F401  (tests patch digitrec.tracking.atexit.register)

from digitrec.tracking.runs import (
    SYSTEM_METRICS_INTERVAL,
    LogDatasets,
    RunTracker,
    Throughput,
    _MLFlowLogger,
    child_run_name,
    single_run_name,
)
from digitrec.tracking.store import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    MAX_PARAM_LEN,
    PARENT_FILE,
    PARENT_TAG,
    PROBE_TIMEOUT,
    TrackingError,
    add_uri_argument,
    experiment_id,
    flatten,
    git_commit,
    hydra_job,
    is_local,
    log_batched,
    open_store,
    probe_store,
)
from digitrec.tracking.sweeps import (
    SWEEP_MARKS,
    SweepParentRun,
    best_run,
    children_of,
    finished_optuna_trials,
    is_optuna,
    latest_sweep,
    logged_model_id,
    objective_value,
    record_best,
    register_model,
    run_overrides,
    sampler_name,
    search_space,
)

__all__ = [
    "EXPERIMENT_KIND",
    "EXPERIMENT_KIND_TAG",
    "MAX_PARAM_LEN",
    "PARENT_FILE",
    "PARENT_TAG",
    "PROBE_TIMEOUT",
    "SWEEP_MARKS",
    "SYSTEM_METRICS_INTERVAL",
    "LogDatasets",
    "RunTracker",
    "SweepParentRun",
    "Throughput",
    "TrackingError",
    "_MLFlowLogger",
    "add_uri_argument",
    "best_run",
    "child_run_name",
    "children_of",
    "experiment_id",
    "flatten",
    "git_commit",
    "hydra_job",
    "is_local",
    "is_optuna",
    "latest_sweep",
    "log_batched",
    "logged_model_id",
    "objective_value",
    "open_store",
    "probe_store",
    "record_best",
    "register_model",
    "finished_optuna_trials",
    "run_overrides",
    "sampler_name",
    "search_space",
    "single_run_name",
]
