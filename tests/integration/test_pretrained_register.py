"""The shipped models register in MLflow with one command, under the names `make demo` looks for,
and the registered photo model reads a photo through MLflow's pyfunc."""

import numpy as np
from PIL import Image

from digitrec.cli import pretrained as cli


def test_register_puts_the_shipped_models_in_the_registry(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert cli.main(["register", "--uri", uri]) == 0
    out = capsys.readouterr().out
    assert "models:/digitrec-photo@champion" in out and "models:/digitrec-mnist@champion" in out
    import mlflow

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/digitrec-photo@champion")
    photo = np.asarray(Image.new("RGB", (320, 240), (120, 120, 120)))[None]
    frame = model.predict(photo)
    assert list(frame.columns) == ["number", "confidence", "x0", "y0", "x1", "y1"]
    assert frame["number"][0] == ""  # a blank wall: no number
