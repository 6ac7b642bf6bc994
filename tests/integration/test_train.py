"""The whole path: configs compose, train, track in MLflow, and checkpoints load without Hydra."""

import pytest
import pytorch_lightning as pl
import torch
from conftest import REPO, compose_cfg, small_overrides
from helpers import train_cli
from mlflow.tracking import MlflowClient

from digitrec.tasks import DigitReader, load_task
from digitrec.training.train import build, train

# SVHN experiments need a format-1 folder: tests/integration/test_svhn.py and tests/integration/test_reading.py run
# them on a rendered one
SVHN_EXPERIMENTS = {
    "paper_svhn",
    "paper_svhn_fast",
    "photo_reader",
    "localizer",
    "photo_reader_real",
    "localizer_real",
    "detector",  # real street photos: tests/integration/test_detector_train.py
}
EXPERIMENTS = sorted(
    p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml") if p.stem not in SVHN_EXPERIMENTS
)


@pytest.mark.parametrize("experiment", [None, *EXPERIMENTS])
def test_every_experiment_composes_and_runs_one_batch(experiment, tmp_path, fake_data_dir):
    overrides = small_overrides(tmp_path, fake_data_dir) + ["debug=fast"]
    if experiment:
        overrides.append(f"experiment={experiment}")
    metrics = train(compose_cfg(overrides, tmp_path))
    assert "test/sequence_accuracy" in metrics


def test_run_is_tracked_and_checkpoint_loads_without_hydra(tmp_path, fake_data_dir):
    overrides = ["trainer.max_epochs=2", "trainer.log_every_n_steps=2"]
    cfg = compose_cfg(small_overrides(tmp_path, fake_data_dir) + overrides, tmp_path)
    metrics = train(cfg)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("mnist_seq").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["model.depth"] == "5" and run.data.params["data.max_len"] == "5"
    assert {"git_commit", "hydra_overrides"} <= set(run.data.tags)
    for key in (
        "test/sequence_accuracy",
        "test/coverage_at_98",
        "test/digit_accuracy",
        "test/length_accuracy",
        "val/sequence_accuracy",
        "train/loss",
    ):
        assert key in run.data.metrics, key
    assert run.data.metrics["test/sequence_accuracy"] == pytest.approx(
        metrics["test/sequence_accuracy"]
    )
    val_history = client.get_metric_history(run.info.run_id, "val/sequence_accuracy")
    assert len(val_history) == 2  # one point per epoch
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "test_predictions.png", "checkpoints", "environment"} <= artifacts
    (freeze,) = client.list_artifacts(run.info.run_id, "environment")
    assert freeze.path == "environment/pip-freeze.txt" and run.data.tags["lock_digest"]
    (ckpt,) = client.list_artifacts(run.info.run_id, "checkpoints")
    local = client.download_artifacts(run.info.run_id, ckpt.path, str(tmp_path / "dl"))

    reader = DigitReader.load_from_checkpoint(local, map_location="cpu", weights_only=True)
    reader.eval()
    assert reader.hparams.depth == 5  # plain hyperparameters, no Hydra objects
    images = torch.randint(0, 256, (4, 1, 28, 112), dtype=torch.uint8)
    state = torch.load(local, map_location="cpu", weights_only=True)
    again = DigitReader(**state["hyper_parameters"])
    again.load_state_dict(state["state_dict"])
    again.eval()
    torch.testing.assert_close(reader(images)[1], again(images)[1])


@pytest.mark.parametrize(
    "model",
    [
        ["model.head=shared"],
        ["model.head=rnn", "model.attention=true"],
        [
            "model=goodfellow",
            "model.widths=[8,8,16,16,16,16,16,16]",
            "model.fc=[64,64]",
            "model.locally_connected=16",
        ],
    ],
    ids=["shared", "rnn-attention", "goodfellow"],
)
def test_every_head_trains_and_its_checkpoint_loads_without_hydra(model, tmp_path, fake_data_dir):
    overrides = small_overrides(tmp_path, fake_data_dir) + model + ["trainer.max_epochs=1"]
    train(compose_cfg(overrides, tmp_path))
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("mnist_seq").experiment_id])
    assert run.data.metrics["model/parameters"] > 0 and run.data.metrics["model/macs_per_image"] > 0
    reader = DigitReader.load_from_checkpoint(
        run.data.tags["best_checkpoint"], map_location="cpu", weights_only=True
    ).eval()
    state = torch.load(run.data.tags["best_checkpoint"], map_location="cpu", weights_only=True)
    # what the checkpoint is travels with it: the task and the datamodule's preprocessing
    assert state["digitrec"] == {
        "format": 1,
        "task": "reader",
        "preprocessing": {"kind": "whole", "channels": 1, "height": 28, "width": 112},
    }
    again = DigitReader(**state["hyper_parameters"])
    again.load_state_dict(state["state_dict"])
    images = torch.randint(0, 256, (4, 1, 28, 112), dtype=torch.uint8)
    torch.testing.assert_close(reader(images)[0], again.eval()(images)[0])


def test_ddp_on_cpu_two_processes_one_tracked_run(tmp_path, fake_data_dir):
    """trainer=ddp: 2 CPU processes, the global batch split between them, rank 0 alone tracks."""
    args = (
        [
            "trainer=ddp",
            "trainer.max_epochs=2",
            "trainer.num_sanity_val_steps=0",
            f"hydra.run.dir={tmp_path}/run",
        ]
        + small_overrides(tmp_path, fake_data_dir)
        + ["data.eval_batch_size=64"]
    )
    result = train_cli(args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "train_ddp_process_1.log").exists()  # the second process ran
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("mnist_seq").experiment_id])
    assert run.info.status == "FINISHED" and "test/sequence_accuracy" in run.data.metrics
    # 256 numbers per epoch in global batches of 32 (16 per process): 8 steps per epoch
    (fit,) = client.get_metric_history(run.info.run_id, "fit_seconds")
    assert fit.step == 16
    val_steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/loss")]
    assert len(val_steps) == 2 == len(set(val_steps))
    # the validation batches were shared out over the 2 processes (4 batches of 64, 64, 64, 8
    # numbers) and gathered back: the logged figures are those of the whole set in one process
    last = client.get_metric_history(run.info.run_id, "val/sequence_accuracy")[-1].value
    cfg = compose_cfg(args[4:] + ["trainer.max_epochs=1"], tmp_path)
    datamodule, _ = build(cfg)
    model = load_task(tmp_path / "run" / "checkpoints" / "last.ckpt")
    single = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    (alone,) = single.validate(model, datamodule=datamodule, verbose=False)
    assert alone["val/sequence_accuracy"] == pytest.approx(last, abs=1e-6)
    loss = client.get_metric_history(run.info.run_id, "val/loss")[-1].value
    assert alone["val/loss"] == pytest.approx(loss, rel=1e-4)


def test_unknown_key_fails_before_training(tmp_path):
    result = train_cli(["no_such_key=1"], tmp_path)
    assert result.returncode != 0
    assert "Key 'no_such_key' is not in struct" in result.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "outputs").exists()


def test_init_from_starts_from_a_checkpoints_weights_and_refuses_another_model(
    tmp_path, fake_data_dir
):
    from digitrec.training.train import build as _build

    base = small_overrides(tmp_path, fake_data_dir) + ["trainer.max_epochs=1"]
    train(compose_cfg(base, tmp_path))
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("mnist_seq").experiment_id])
    best = run.data.tags["best_checkpoint"]
    trained = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    _, fresh = _build(compose_cfg(base, tmp_path))
    _, started = _build(compose_cfg(base + [f"init_from={best}"], tmp_path))
    assert any(not torch.equal(v, trained[k]) for k, v in fresh.state_dict().items())
    for k, v in started.state_dict().items():
        torch.testing.assert_close(v, trained[k], rtol=0, atol=0)
    train(compose_cfg(base + [f"init_from={best}"], tmp_path))  # a new run, tracked in full
    runs = client.search_runs([client.get_experiment_by_name("mnist_seq").experiment_id])
    (tuned,) = [r for r in runs if r.info.run_id != run.info.run_id]
    assert tuned.data.tags["init_from"] == best and tuned.data.params["init_from"] == best
    assert tuned.data.params["model.depth"] == "5" and "model/parameters" in tuned.data.metrics
    with pytest.raises(ValueError, match=r"init_from=.*do not fit this model"):
        _build(compose_cfg(base + [f"init_from={best}", "model.head=shared"], tmp_path))
    with pytest.raises(FileNotFoundError, match="init_from=nope.ckpt: no such checkpoint"):
        _build(compose_cfg(base + ["init_from=nope.ckpt"], tmp_path))
