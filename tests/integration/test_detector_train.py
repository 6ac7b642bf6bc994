"""experiment=detector end to end on the real street photos of ../shared/data (a few steps, photo
scenes and real SVHN in the mix): the third task trained by the same train(cfg), tracked, its
checkpoint saying what it is, its logged model a photo reader (pyfunc)."""

import numpy as np
from conftest import compose_cfg, small_overrides
from helpers import unavailable
from mlflow.tracking import MlflowClient

from digitrec import checkpoints
from digitrec.tasks import NumberDetector, load_task
from digitrec.training.train import train


def test_detector_experiment_trains_tracks_and_checkpoints(tmp_path, real_data_dir):
    if not (real_data_dir / "curtin_numbers" / "train" / "labels.json").is_file():
        unavailable(f"no curtin_numbers under {real_data_dir}")
    overrides = [
        o for o in small_overrides(tmp_path, real_data_dir) if not o.startswith("data.")
    ] + [
        "experiment=detector",
        "data.size=128",
        "data.crop=128",
        "data.train_size=16",
        "data.val_size=8",
        "data.test_size=8",
        "data.batch_size=4",
        "data.steps_per_epoch=2",
        "data.num_workers=0",
        f"data.svhn_root={real_data_dir}/svhn/real",
        "model.widths=[8,8,16,16,16]",
        "model.head_width=8",
        "trainer.max_epochs=1",
    ]
    metrics = train(compose_cfg(overrides, tmp_path))
    assert {
        "test/read_accuracy",
        "test/false_answers",
        "test/recall50",
        "val/read_accuracy",
    } <= set(metrics)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("detector").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["model_uri"].endswith("/model")
    assert run.data.metrics["model/parameters"] > 0
    best = run.data.tags["best_checkpoint"]
    assert checkpoints.load(best).task == "detector"
    model = load_task(best)
    assert isinstance(model, NumberDetector)
    assert model.preprocessing == {"kind": "letterbox", "size": 128}
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    frame = mlflow.pyfunc.load_model(run.data.tags["model_uri"]).predict(
        np.zeros((1, 96, 160, 3), np.uint8)
    )
    assert list(frame.columns[:2]) == ["number", "confidence"] and len(frame) == 1
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "test_detections.png" in artifacts
