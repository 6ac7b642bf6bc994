"""Sweeps: parent/child runs, parallel jobs on one SQLite store, the comparison CLI, and a real
MLflow server reading a sweep back over REST. (Crashes and resumes: test_sweeps_resume.py.)"""

import csv
import io
import json
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, compose_cfg, small_overrides
from helpers import mlflow_server, train_cli
from mlflow.tracking import MlflowClient

from digitrec.cli import compare

OBJECTIVE = "suite/touching/sequence_accuracy"  # the parallel sweep optimises a suite metric
FAST = ["trainer.max_epochs=1", "trainer.num_sanity_val_steps=0", "trainer.log_every_n_steps=2"]


def _runs(store: Path, experiment: str):
    client = MlflowClient(f"sqlite:///{store}")
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    parents = [r for r in runs if r.data.tags.get("sweep") == "true"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


@pytest.fixture(scope="module")
def parallel_sweep(tmp_path_factory, fake_data_dir):
    """4 jobs, 2 at a time (joblib launcher), one SQLite store, optimising an evaluation suite's
    metric: (tmp dir, store, completed process)."""
    tmp = tmp_path_factory.mktemp("parallel")
    args = [
        "-m",
        "launcher=local",
        "hydra.launcher.n_jobs=2",
        "threads=1",
        "seed=0,1,2,3",
        "tracking.sweep_name=four",
        f"hydra.sweep.dir={tmp}/sweep",
        *FAST,
        *small_overrides(tmp, fake_data_dir),
        "eval=[touching]",
        "eval.touching.n=60",
        f"tracking.objective={OBJECTIVE}",
    ]
    return tmp, tmp / "mlflow.db", train_cli(args, tmp)


def test_four_jobs_two_at_a_time_share_one_sqlite_store(parallel_sweep):
    tmp, store, result = parallel_sweep
    assert result.returncode == 0, result.stderr[-3000:]
    client, parents, children = _runs(store, "mnist_seq")
    (parent,) = parents
    assert len(children) == 4
    assert {c.data.params["seed"] for c in children} == {"0", "1", "2", "3"}
    for c in children:
        assert c.info.status == "FINISHED"
        assert c.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert {"val/sequence_accuracy", "test/sequence_accuracy", "train/loss", OBJECTIVE} <= set(
            c.data.metrics
        )
        assert len(client.get_metric_history(c.info.run_id, "val/sequence_accuracy")) == 1
    # they ran in parallel: some two children's [start, end] intervals overlap
    spans = sorted((c.info.start_time, c.info.end_time) for c in children)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))
    tags = parent.data.tags
    assert parent.info.status == "FINISHED" and tags["sweep_name"] == "four"
    assert json.loads(tags["search_space"]) == {"seed": "0,1,2,3"}
    assert tags["sampler"].startswith("grid") and "joblib" in tags["launcher"]
    assert tags["objective"] == f"{OBJECTIVE} (max)"
    top = max(c.data.metrics[OBJECTIVE] for c in children)
    (best,) = [c for c in children if c.info.run_id == tags["best_run_id"]]
    assert best.data.metrics[OBJECTIVE] == top == parent.data.metrics[f"best/{OBJECTIVE}"]
    assert json.loads(tags["best_params"]) == {"seed": best.data.params["seed"]}


def test_compare_sorts_by_the_objective_and_shows_the_best_checkpoint(parallel_sweep, capsys):
    tmp, store, _ = parallel_sweep
    client, (parent,), children = _runs(store, "mnist_seq")
    uri = ["--uri", f"sqlite:///{store}"]
    assert compare.main([parent.info.run_id, *uri]) == 0
    out = capsys.readouterr().out
    top = max(c.data.metrics[OBJECTIVE] for c in children)
    best = next(c for c in children if f"best run {c.info.run_id}" in out)
    assert best.data.metrics[OBJECTIVE] == top
    assert f"best checkpoint: {best.data.tags['best_checkpoint']}" in out
    assert f"runs:/{best.info.run_id}/checkpoints/best.ckpt" in out
    header = next(line for line in out.splitlines() if line.startswith("rank"))
    assert header.split()[-1] == "seed"  # the only parameter that varies
    assert "model.depth" not in header

    assert compare.main(["mnist_seq", "--csv", "--objective", OBJECTIVE, *uri]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 4 and float(rows[0][OBJECTIVE]) == top
    values = [float(r[OBJECTIVE]) for r in rows]
    assert values == sorted(values, reverse=True)
    assert "suite/touching/sequence_accuracy" in rows[0]  # every suite is a column

    # plain runs by id: one table, with an extra metric column
    ids = [c.info.run_id for c in children[:2]]
    extra = "suite/touching/sequence_accuracy_len3"
    assert compare.main([*ids, "--metric", extra, *uri]) == 0
    out = capsys.readouterr().out
    assert "runs: 2 runs" in out and extra in out

    assert compare.main(["mnist_seq", "--latest-sweep", "--markdown", *uri]) == 0
    assert "| rank | run | status |" in capsys.readouterr().out
    assert compare.main(["no_such_experiment", *uri]) == 1
    assert "no experiment or run 'no_such_experiment'" in capsys.readouterr().err


def test_a_real_mlflow_server_reads_the_sweep_back_over_rest(parallel_sweep):
    tmp, store, _ = parallel_sweep
    _, (parent,), _ = _runs(store, "mnist_seq")
    with mlflow_server(f"sqlite:///{store}", tmp) as base:

        def api(path, body=None):
            data = json.dumps(body).encode() if body is not None else None
            request = urllib.request.Request(
                f"{base}/api/2.0/mlflow/{path}",
                data=data,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as r:
                return json.loads(r.read())

        exp = api("experiments/get-by-name?experiment_name=mnist_seq")["experiment"]
        pid = parent.info.run_id
        found = api(
            "runs/search",
            {
                "experiment_ids": [exp["experiment_id"]],
                "filter": f"tags.mlflow.parentRunId = '{pid}'",
            },
        )["runs"]
        assert len(found) == 4
        assert all(r["info"]["status"] == "FINISHED" for r in found)
        names = {m["key"] for r in found for m in r["data"]["metrics"]}
        assert "val/sequence_accuracy" in names
        tags = {t["key"]: t["value"] for t in api(f"runs/get?run_id={pid}")["run"]["data"]["tags"]}
        assert tags["best_run_id"] in {r["info"]["run_id"] for r in found}


def test_search_and_launcher_configs_compose(tmp_path, fake_data_dir):
    searches = sorted(p.stem for p in (REPO / "conf" / "hparams_search").glob("*.yaml"))
    assert searches == ["mnist_grid", "mnist_optuna", "svhn_optuna"]
    for name in searches:
        cfg = compose_cfg([f"paths.data_dir={fake_data_dir}", f"hparams_search={name}"], tmp_path)
        assert cfg.tracking.objective == "val/sequence_accuracy" and cfg.hydra.sweeper.params
        assert cfg.tracking.sweep_name == name
        if "optuna" in name:
            assert cfg.hydra.sweeper.direction == "maximize"
            assert cfg.hydra.sweeper.sampler._target_ == "optuna.samplers.TPESampler"
        if name == "svhn_optuna":
            svhn = cfg
    assert svhn.model.depth == 8 and svhn.study == "svhn_search"  # the paper's recipe
    local = compose_cfg(["hparams_search=mnist_optuna", "launcher=local"], tmp_path)
    assert "joblib" in local.hydra.launcher._target_ and local.hydra.launcher.n_jobs == 2
    slurm = compose_cfg(["launcher=slurm"], tmp_path)
    assert slurm.hydra.launcher._target_.endswith("SlurmLauncher")
    assert slurm.hydra.launcher.gpus_per_node == 1
