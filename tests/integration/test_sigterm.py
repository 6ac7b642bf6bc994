"""SIGTERM at any stage of a run (here: after fit, while testing) ends its MLflow run KILLED, never
RUNNING forever (issue 30)."""

import os
import signal

import pytest
from conftest import compose_cfg, small_overrides
from mlflow.tracking import MlflowClient

from digitrec.training import train as train_module


def test_sigterm_while_testing_ends_the_run_killed(tmp_path, fake_data_dir, monkeypatch):
    def terminated_while_testing(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM should have ended the run")

    monkeypatch.setattr(train_module, "fit_and_test", terminated_while_testing)
    cfg = compose_cfg(small_overrides(tmp_path, fake_data_dir), tmp_path)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(train_module.Terminated):
        train_module.train(cfg)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("mnist_seq").experiment_id])
    assert run.info.status == "KILLED"
