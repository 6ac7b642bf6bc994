"""`make demo` (digitrec-demo): the models it finds, what it says when there are none, and the
page it serves (a real process on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request

import torch
from conftest import new_store
from helpers import save_checkpoint, stop
from mlflow.tracking import MlflowClient

from digitrec.cli import demo
from digitrec.serving import demo as demo_lib
from digitrec.tasks import DigitReader


def _mnist_checkpoint(path):
    torch.manual_seed(0)
    return save_checkpoint(DigitReader(depth=2, widths=[8, 8], fc=[16]), path)


def _finished_run(client, experiment: str, checkpoint) -> None:
    run = client.create_run(client.create_experiment(experiment))
    client.set_tag(run.info.run_id, "best_checkpoint", str(checkpoint))
    client.set_terminated(run.info.run_id)


def _no_shipped_models(monkeypatch, tmp_path):
    from digitrec import pretrained

    monkeypatch.setattr(pretrained, "HERE", tmp_path / "no-box")


def test_models_are_found_in_the_store_the_photo_reader_folder_and_the_box(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    client = MlflowClient(f"sqlite:///{new_store(tmp_path / 'mlflow.db')}")
    shipped = demo_lib.find_models(client)  # nothing trained here: the models in the box
    assert shipped["photo"][0][0].endswith("pretrained/detector.ckpt")
    assert shipped["draw"][0].endswith("pretrained/mnist.ckpt")
    _no_shipped_models(monkeypatch, tmp_path)
    assert demo_lib.find_models(client) == {"draw": None, "photo": None}
    checkpoint = _mnist_checkpoint(tmp_path / "best.ckpt")
    _finished_run(client, "mnist_seq", checkpoint)
    found = demo_lib.find_models(client)
    assert found["draw"] == (str(checkpoint), "the latest mnist_seq run") and found["photo"] is None
    folder = tmp_path / "outputs" / "photo_reader" / "detector" / "checkpoints"
    folder.mkdir(parents=True)  # what make train-photo-reader leaves
    (folder / "best.ckpt").write_bytes(b"")
    (detector, localizer), where = demo_lib.find_models(client)["photo"]
    assert detector.endswith("detector/checkpoints/best.ckpt") and localizer is None
    assert demo_lib.find_models(client, mnist_reader="x.ckpt")["draw"] == ("x.ckpt", "given")


def test_without_any_model_it_names_the_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _no_shipped_models(monkeypatch, tmp_path)
    assert demo.main([]) == 2
    err = capsys.readouterr().err
    assert "make train" in err and "make train-photo-reader" in err
    assert not (tmp_path / "mlflow.db").exists()  # nothing created by looking


def test_demo_with_nothing_trained_serves_all_three_modes_from_the_box(tmp_path):
    """A fresh clone, no training: make demo's page has upload, camera and draw ready."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "digitrec.cli.demo", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        lines = []
        for line in process.stdout:  # until the server says where it listens
            lines.append(line)
            if (url := re.search(r"http://127\.0\.0\.1:\d+/", line)) or len(lines) > 50:
                break
        assert url, "".join(lines)
        text = "".join(lines)
        assert "upload and camera: " in text and "pretrained/detector.ckpt" in text
        assert "draw: " in text and "pretrained/mnist.ckpt" in text
        with urllib.request.urlopen(f"{url.group(0)}api/modes", timeout=30) as r:
            modes = json.loads(r.read())
        assert modes["draw"]["ready"] and modes["photo"]["ready"]
        with urllib.request.urlopen(url.group(0), timeout=30) as r:
            assert 'id="pad"' in r.read().decode()
    finally:
        stop(process)


def test_the_page_is_served_over_https_with_a_certificate(tmp_path):
    """--tls CERT KEY: what a phone's browser needs before it shows the camera to the page."""
    import datetime
    import ssl
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from digitrec.serving import app as serve

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    reader = serve.open_drawing_reader(str(_mnist_checkpoint(tmp_path / "best.ckpt")))
    server = serve.make_server(None, port=0, drawing_reader=reader, tls=(str(cert), str(key_file)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False  # a certificate for an address, not a name
        url = f"https://127.0.0.1:{server.server_port}/health"
        with urllib.request.urlopen(url, timeout=30, context=context) as r:
            assert json.loads(r.read())["status"] == "ok"
    finally:
        server.shutdown()
        server.server_close()
