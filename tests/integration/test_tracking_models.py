"""What a training run leaves in MLflow besides its metrics: its best model (a pyfunc that reads
like the checkpoint), the datasets it read, system metrics and throughput, a readable name, an
experiment that opens on the model-training view; and the model registered from
`digitrec-compare --register`, read back by `digitrec-predict models:/NAME@champion`. One tiny
training run serves every test."""
# ruff: noqa: F811  (test_reading's fixture as an argument)

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import mlflow
import numpy as np
import pytest
import torch
from conftest import compose_cfg, new_store, small_overrides
from helpers import save_checkpoint
from hydra.utils import instantiate
from mlflow.tracking import MlflowClient
from PIL import Image

from digitrec.cli import compare, predict
from digitrec.cli import evaluate_photos as evaluate
from digitrec.data import svhn
from digitrec.data.sequences import labels_to_string
from digitrec.datamodules import SVHNDataModule
from digitrec.evaluation.scoring import predict as predict_batch
from digitrec.tasks import DigitReader, load_task
from digitrec.tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, child_run_name, store
from digitrec.tracking.datasets import DigitrecSource
from digitrec.training.train import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory, fake_data_dir):
    """One run of 2 short epochs with an evaluation suite: (client, run, its config)."""
    tmp = tmp_path_factory.mktemp("tracked")
    overrides = [
        *small_overrides(tmp, fake_data_dir),
        "trainer.max_epochs=2",
        "trainer.num_sanity_val_steps=0",
        "eval=[touching]",
        "eval.touching.n=60",
        "+tracking.system_metrics_interval=0.5",
    ]
    cfg = compose_cfg(overrides, tmp)
    train(cfg)
    client = MlflowClient(str(cfg.tracking.uri))
    (run,) = client.search_runs([client.get_experiment_by_name("mnist_seq").experiment_id])
    return client, run, cfg


def _test_batch(cfg, n: int = 16) -> np.ndarray:
    datamodule = instantiate(cfg.data, augmentation=None)
    datamodule.setup()
    return datamodule.test_set.images[:n]


def test_the_best_checkpoint_is_a_pyfunc_that_reads_like_it(trained):
    client, run, cfg = trained
    assert run.info.status == "FINISHED"
    assert run.data.tags["model_uri"] == f"runs:/{run.info.run_id}/model"
    gray = _test_batch(cfg)  # (16, 28, 112), as the test set is
    images = np.repeat(gray[..., None], 3, axis=3)  # the model takes RGB
    mlflow.set_tracking_uri(str(cfg.tracking.uri))
    answer = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(images)
    reader = load_task(run.data.tags["best_checkpoint"])
    decoded, _ = predict_batch(reader, gray)
    numbers = [
        labels_to_string(d, n)
        for d, n in zip(decoded.digits.numpy(), decoded.length.numpy(), strict=True)
    ]
    assert list(answer["number"]) == numbers
    np.testing.assert_allclose(answer["confidence"], decoded.confidence.numpy(), rtol=1e-4)
    assert (answer[["x1", "y1"]].to_numpy() == [112, 28]).all()  # the whole image


def test_the_run_logs_the_datasets_it_read(trained, fake_data_dir):
    client, run, _ = trained
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    by_name = {i.dataset.name: i for i in inputs}
    contexts = {name: i.tags[0].value for name, i in by_name.items()}
    assert contexts == {
        "mnist-numbers-train": "training",
        "mnist-numbers-val": "validation",
        "mnist-numbers-test": "test",
        "suite-touching": "evaluation",
    }
    train_images = fake_data_dir / "mnist" / "train-images-idx3-ubyte.gz"
    md5 = hashlib.md5(train_images.read_bytes()).hexdigest()
    for i in inputs:
        assert i.dataset.source_type == "digitrec" and len(i.dataset.digest) == 10
        source = json.loads(i.dataset.source)
        assert source["files"]["train-images-idx3-ubyte.gz"] == md5
        assert source["official_md5s"] is False  # generated stand-ins, not MNIST
    assert len({i.dataset.digest for i in inputs}) == 4
    test = json.loads(by_name["mnist-numbers-test"].dataset.profile)
    assert test["size"] == 200 and test["config"]["layouts"][0]["max_len"] == 5
    suite = json.loads(by_name["suite-touching"].dataset.profile)
    assert suite["size"] == 60 and suite["config"]["layouts"][0]["gap"][1] <= 0  # touching
    schema = json.loads(by_name["mnist-numbers-train"].dataset.schema)["mlflow_tensorspec"]
    assert json.loads(schema["features"])[0]["tensor-spec"]["shape"] == [-1, 1, 28, 112]
    assert isinstance(mlflow.data.get_source(by_name["mnist-numbers-train"]), DigitrecSource)


def test_the_run_has_system_metrics_and_throughput(trained):
    client, run, _ = trained
    system = {k for k in run.data.metrics if k.startswith("system/")}
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= system
    history = client.get_metric_history(run.info.run_id, "train/images_per_second")
    assert len(history) == 2 and all(m.value > 0 for m in history)  # one point per epoch
    assert [m.step for m in history] == [8, 16]


def test_the_run_is_named_from_its_model_and_the_experiment_opens_on_model_training(trained):
    client, run, cfg = trained
    assert run.info.run_name == "cnn-d5-separate-s0"
    started = datetime.fromisoformat(run.data.tags["started"])
    assert abs(started.timestamp() * 1000 - run.info.start_time) < 60_000
    assert run.data.tags["output_dir"] == str(cfg.paths.output_dir)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"
    # an experiment made before the tag gets it; a user's own choice is kept
    old = client.create_experiment("old")
    other = client.create_experiment("chosen", tags={EXPERIMENT_KIND_TAG: "finetuning"})
    assert store.experiment_id(client, "old") == old
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    store.experiment_id(client, "chosen")
    assert client.get_experiment(other).tags[EXPERIMENT_KIND_TAG] == "finetuning"


def test_sweep_children_are_named_by_their_swept_values():
    overrides = {
        "model.depth": "3",
        "optimizer.lr": "0.0012345678",
        "data.max_len": "4",
        "model.max_len": "4",
        "trainer.max_epochs": "2",
    }
    swept = ["model.depth", "optimizer.lr", "data.max_len", "model.max_len"]
    assert child_run_name(overrides, swept) == "depth=3 lr=0.001235 data.max_len=4 model.max_len=4"
    assert child_run_name({"seed": "1"}, []) == "seed=1"


def test_compare_registers_the_best_run_and_predict_reads_it(
    trained, tmp_path, capsys, monkeypatch
):
    client, run, cfg = trained
    uri = str(cfg.tracking.uri)
    # the run as the child of a sweep, as `digitrec-train -m` leaves it
    parent = client.create_run(
        run.info.experiment_id,
        tags={"sweep": "true", "sweep_name": "one", "objective": "val/sequence_accuracy (max)"},
    )
    client.set_tag(run.info.run_id, "mlflow.parentRunId", parent.info.run_id)
    client.set_terminated(parent.info.run_id)
    args = ["mnist_seq", "--latest-sweep", "--register", "digitrec-mnist", "--uri", uri]
    assert compare.main(args) == 0
    out = capsys.readouterr().out
    assert "models:/digitrec-mnist@champion" in out.splitlines()[-1]
    version = client.get_model_version_by_alias("digitrec-mnist", "champion")
    assert version.run_id == run.info.run_id and int(version.version) == 1
    assert "val/sequence_accuracy" in version.tags

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    image = np.repeat(_test_batch(cfg, 1)[0][..., None], 3, axis=2)
    Image.fromarray(image).save(tmp_path / "number.png")
    assert predict.main(["models:/digitrec-mnist@champion", str(tmp_path / "number.png")]) == 0
    line = json.loads(capsys.readouterr().out)
    answer = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(image[None])
    assert line["number"] == answer["number"][0]
    capsys.readouterr()  # MLflow's download bars

    # a best run without a logged model: one line, nothing registered
    bare = client.create_experiment("bare")
    plain = client.create_run(bare).info.run_id
    client.log_metric(plain, "val/sequence_accuracy", 0.5)
    client.set_terminated(plain)
    assert compare.main(["bare", "--register", "nothing", "--uri", uri]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"digitrec-compare: best run {plain} has no logged model "
        f"(runs:/{plain}/model); nothing registered"
    ]


def test_svhn_sets_are_described_by_their_split_and_cache(rendered_root):
    datamodule = SVHNDataModule(str(rendered_root), val_size=8, batch_size=8, download=False)
    datamodule.prepare_data()
    datamodule.setup()
    train_set, val, test = datamodule.describe_datasets()
    assert [train_set.name, val.name, test.name] == [
        "street-rendered-train",
        "street-rendered-val",
        "street-rendered-test",
    ]
    key = datamodule.pre.key
    assert test.source["caches"] == {
        "test": {
            "file": f"test-{key}.h5",
            "bytes": svhn.cache_path(rendered_root, "test", datamodule.pre).stat().st_size,
        }
    }
    assert train_set.size == 32 and val.size == 8 and test.size == 12
    assert train_set.config["crop"] == "random 54x54" and test.config["crop"] == "center"
    assert len({train_set.digest, val.digest, test.digest}) == 3


def test_a_photo_evaluation_logs_its_folders_as_datasets(tmp_path):
    torch.manual_seed(0)
    reader = DigitReader(in_channels=3, height=54, width=54, depth=2, widths=[8, 8], fc=[16])
    checkpoint = save_checkpoint(reader, tmp_path / "reader.ckpt")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((60, 80, 3), 200, np.uint8)).save(photos / "a.png")
    (photos / "labels.csv").write_text("file,number\na.png,12\n")
    uri = f"sqlite:///{new_store(tmp_path / 'mlflow.db')}"
    assert evaluate.main([str(checkpoint), "--folder", str(photos), "--uri", uri]) == 0
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(evaluate.EXPERIMENT)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    (run,) = client.search_runs([experiment.experiment_id])
    (dataset,) = [i.dataset for i in run.inputs.dataset_inputs]
    assert dataset.name == f"{tmp_path.name}/photos" and dataset.source_type == "digitrec"
    md5 = hashlib.md5((photos / "labels.csv").read_bytes()).hexdigest()
    assert json.loads(dataset.source)["files"] == {"labels.csv": md5}
    assert json.loads(dataset.profile)["size"] == 1
