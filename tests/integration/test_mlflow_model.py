"""A reader as an MLflow model: logged with its checkpoints, registered with an alias, loaded
back with mlflow.pyfunc, read by digitrec-predict from `models:/NAME@alias`, and answered by a
real `mlflow models serve` on 127.0.0.1. The store is a SQLite file in a temporary folder."""
# ruff: noqa: F811  (test_reading's fixtures as arguments)

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import mlflow
import numpy as np
import pytest
import torch
from conftest import new_store
from helpers import save_checkpoint
from photo_fixtures import photo
from PIL import Image

from digitrec.cli import predict
from digitrec.inference.pipeline import PhotoReader, WholeImageReader
from digitrec.registry import open_reader, resolve
from digitrec.registry.pyfunc import log_reader_model
from digitrec.tasks import DigitReader


@pytest.fixture(scope="module")
def store(tmp_path_factory, checkpoints):
    """A store with the two-stage photo model registered as digitrec-photo@champion."""
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{new_store(root / 'mlflow.db')}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("models", artifact_location=str(root / "artifacts"))
    with mlflow.start_run(experiment_id=experiment) as run:
        info = log_reader_model(*checkpoints, registered_model_name="digitrec-photo")
    client = mlflow.MlflowClient(uri)
    client.set_registered_model_alias("digitrec-photo", "champion", info.registered_model_version)
    return uri, run.info.run_id


def test_pyfunc_reads_like_the_checkpoints(store, checkpoints):
    uri, run_id = store
    images = np.stack([photo(120, 160, 1), photo(120, 160, 2)])
    expected = [PhotoReader.from_checkpoints(*checkpoints)(image) for image in images]
    for ref in (f"runs:/{run_id}/model", "models:/digitrec-photo@champion"):
        answer = mlflow.pyfunc.load_model(ref).predict(images)
        assert list(answer["number"]) == [e.number for e in expected]
        np.testing.assert_allclose(
            answer["confidence"], [e.confidence for e in expected], rtol=1e-5
        )
        np.testing.assert_allclose(
            answer[["x0", "y0", "x1", "y1"]].to_numpy(), [e.box for e in expected], atol=1e-3
        )


def test_model_uris_resolve_to_the_checkpoints_and_bad_ones_are_one_line(
    store, monkeypatch, tmp_path
):
    uri, run_id = store
    # read from the store given, whatever this process's default store is
    mlflow.set_tracking_uri(f"sqlite:///{new_store(tmp_path / 'other.db')}")
    try:
        for ref in ("models:/digitrec-photo@champion", "models:/digitrec-photo/1"):
            reader, localizer = resolve(ref, uri)
            assert reader.name == "reader.ckpt" and localizer.name == "localizer.ckpt"
    finally:
        mlflow.set_tracking_uri(uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert isinstance(open_reader("models:/digitrec-photo@champion"), PhotoReader)
    with pytest.raises(ValueError, match=r"^models:/nothing@champion: not found in the tracking"):
        resolve("models:/nothing@champion", uri)


def test_predict_reads_a_registered_model_and_an_mnist_reader(
    store,
    checkpoints,
    tmp_path,
    capsys,
    monkeypatch,
):
    uri, _ = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    image = photo(120, 160, 3)
    Image.fromarray(image).save(tmp_path / "house.png")
    assert predict.main(["models:/digitrec-photo@champion", str(tmp_path / "house.png")]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["number"] == PhotoReader.from_checkpoints(*checkpoints)(image).number
    # a reader of synthetic MNIST numbers (1 x 28 x 112) reads the whole image
    torch.manual_seed(0)
    mnist = save_checkpoint(DigitReader(depth=2, widths=[8, 8], fc=[16]), tmp_path / "m.ckpt")
    digits = np.zeros((56, 224, 3), np.uint8)
    digits[10:46, 40:60] = 255
    Image.fromarray(digits).save(tmp_path / "drawn.png")
    assert isinstance(open_reader(mnist), WholeImageReader)
    assert predict.main([str(mnist), str(tmp_path / "drawn.png")]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["box"] == [0.0, 0.0, 224.0, 56.0] and 0 < line["confidence"] <= 1
    assert (
        predict.main([str(mnist), str(tmp_path / "drawn.png"), "--localizer", str(checkpoints[1])])
        == 2
    )
    assert "a localizer needs a reader of (3, 54, 54)" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_models_serve_answers_on_loopback(store, checkpoints):
    uri, _ = store
    port = _free_port()
    bin_dir = os.path.dirname(sys.executable)  # it execs `uvicorn` from PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            "models:/digitrec-photo@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        image = photo(60, 80, 4)
        body = json.dumps({"inputs": image[None].tolist()}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        deadline = time.monotonic() + 90
        while True:  # until the server is up (bounded)
            try:
                with urllib.request.urlopen(request, timeout=30) as r:
                    answer = json.loads(r.read())
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"mlflow models serve did not answer: {server.stderr.read()[-2000:]}"
                    )
                time.sleep(0.5)
        expected = PhotoReader.from_checkpoints(*checkpoints)(image)
        assert answer["predictions"][0]["number"] == expected.number
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


def test_export_and_evaluate_take_a_model_uri(store, tmp_path, monkeypatch):
    """digitrec-export and digitrec-evaluate read models:/ like the checkpoints (the registered
    two-stage model brings its localizer)."""
    from digitrec.cli import export
    from digitrec.evaluation import folders as evaluate_cli_lib
    from digitrec.tasks import DigitReader

    uri, _ = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    out = tmp_path / "exported"
    assert (
        export.main(
            ["models:/digitrec-photo@champion", "--out", str(out), "--formats", "torchscript"]
        )
        == 0
    )
    meta = json.loads((out / "export.json").read_text())
    assert {"reader", "localizer"} <= set(meta)
    assert isinstance(evaluate_cli_lib.load_reader("models:/digitrec-photo@champion"), DigitReader)
    with pytest.raises(evaluate_cli_lib.UsageError, match="models:/nothing@champion: not found"):
        evaluate_cli_lib.load_reader("models:/nothing@champion")
