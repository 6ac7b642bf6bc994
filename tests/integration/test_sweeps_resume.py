"""Sweeps and jobs that fail or stop: a crashed job is a FAILED child and the sweep goes on, an
Optuna study resumes from its storage into the same parent run, a SIGKILLed training job
resumes into the same MLflow run."""

import json

import optuna
import pytest
from conftest import small_overrides
from helpers import train_cli
from test_sweeps import FAST, _runs

from digitrec.checkpoints import run_of as checkpoint_meta


def test_a_crashed_job_is_a_failed_child_and_the_sweep_goes_on(tmp_path, fake_data_dir):
    """Basic sweeper: every job runs; the sweep exits non-zero; the parent keeps the best child."""
    args = [
        "-m",
        "optimizer.lr=-1,0.001",
        f"hydra.sweep.dir={tmp_path}/sweep",
        *FAST,
        *small_overrides(tmp_path, fake_data_dir),
    ]
    result = train_cli(args, tmp_path)
    assert result.returncode != 0 and "Invalid learning rate" in result.stderr
    _, (parent,), children = _runs(tmp_path / "mlflow.db", "mnist_seq")
    status = {c.data.params["optimizer.lr"]: c.info.status for c in children}
    assert status == {"-1": "FAILED", "0.001": "FINISHED"}  # the job after the crash ran
    good = next(c for c in children if c.info.status == "FINISHED")
    assert parent.info.status == "FAILED"  # the sweep did not complete cleanly...
    assert parent.data.tags["best_run_id"] == good.info.run_id  # ...but its results are kept
    assert parent.data.tags["children_failed"] == "1"


def test_optuna_sweep_resumes_from_its_storage(tmp_path, fake_data_dir):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    base = [
        "-m",
        "hparams_search=mnist_optuna",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=resume",
        *FAST,
        *small_overrides(tmp_path, fake_data_dir),
    ]
    first = train_cli(
        [*base, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path}/a"], tmp_path
    )
    assert first.returncode == 0, first.stderr[-3000:]
    study = optuna.load_study(study_name="resume", storage=storage)
    done = [(t.number, t.params) for t in study.trials]
    study.ask()  # a trial left RUNNING, as a killed sweep leaves it
    second = train_cli(
        [*base, "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={tmp_path}/b"], tmp_path
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert "has 2 finished trials of 3: running 1 more" in second.stderr + second.stdout
    trials = optuna.load_study(study_name="resume", storage=storage).trials
    states = [t.state.name for t in trials]
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    assert [(t.number, t.params) for t in trials[:2]] == done  # not redone
    assert trials[3].params != done[0][1] and trials[3].params != done[1][1]
    _, parents, children = _runs(tmp_path / "mlflow.db", "mnist_search")
    assert len(parents) == 1 and len(children) == 3  # one parent run for the whole study
    (parent,) = parents
    assert parent.info.status == "FINISHED" and parent.data.tags["children"] == "3"
    assert parent.data.tags["sampler"] == "optuna TPESampler (seed 2)"  # moved on by 2
    assert set(json.loads(parent.data.tags["best_params"])) == set(trials[0].params)


def test_killed_training_job_resumes_into_the_same_mlflow_run(tmp_path, fake_data_dir):
    """SIGKILL in the middle of epoch 2 (8 steps an epoch), then ckpt_path=last.ckpt."""
    run = [
        "trainer.max_epochs=3",
        "trainer.log_every_n_steps=2",
        "trainer.num_sanity_val_steps=0",
        *small_overrides(tmp_path, fake_data_dir),
    ]
    killed = train_cli(
        [
            *run,
            f"hydra.run.dir={tmp_path}/run",
            "+callbacks.kill._target_=helpers.KillAtStep",
            "+callbacks.kill.step=12",
        ],
        tmp_path,
    )
    assert killed.returncode == -9, killed.stderr[-3000:]
    client, _, _ = _runs(tmp_path / "mlflow.db", "mnist_seq")
    (first,) = client.search_runs([client.get_experiment_by_name("mnist_seq").experiment_id])
    assert first.info.status == "RUNNING"  # killed: nobody closed it
    before = [m.step for m in client.get_metric_history(first.info.run_id, "train/loss")]
    assert max(before) > 8  # it logged steps after the epoch-1 checkpoint (step 8)

    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    resumed = train_cli([*run, f"hydra.run.dir={tmp_path}/again", f"ckpt_path={last}"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (run_,) = client.search_runs([client.get_experiment_by_name("mnist_seq").experiment_id])
    assert run_.info.run_id == first.info.run_id and run_.info.status == "FINISHED"
    assert run_.data.tags["resumed"] == "1"
    for key in ("train/loss", "val/loss", "val/sequence_accuracy", "lr-AdamW"):
        steps = [m.step for m in client.get_metric_history(run_.info.run_id, key)]
        assert len(steps) == len(set(steps)), (key, steps)  # no step logged twice
    val_steps = sorted(m.step for m in client.get_metric_history(run_.info.run_id, "val/loss"))
    assert val_steps == [7, 15, 23]  # epochs 1, 2, 3: training went on to the end
    assert max(m.step for m in client.get_metric_history(run_.info.run_id, "train/loss")) > 16
    assert "test/sequence_accuracy" in run_.data.metrics


def test_resuming_from_a_missing_checkpoint_fails_in_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ckpt_path=.*nope.ckpt: no such checkpoint file"):
        checkpoint_meta(str(tmp_path / "nope.ckpt"))
    assert checkpoint_meta(None) == (None, 0)
