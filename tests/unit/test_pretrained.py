"""The models in the box: they load weights-only, say what they are, their cards name the command
that made them; digitrec-predict uses the detector when no model is given and handles a 1x1, a
12000x12000 and a number-free photo (no answer or one error line, never a crash)."""

import json
import re

import pytest
import torch
from PIL import Image

from digitrec import checkpoints, pretrained
from digitrec.cli import predict
from digitrec.paths import ROOT
from digitrec.tasks import load_task

EXAMPLE = ROOT / "docs" / "examples" / "curtin_0017.jpg"


@pytest.mark.parametrize("name", list(pretrained.MODELS))
def test_each_shipped_model_loads_and_its_card_names_its_command(name):
    path = pretrained.path(name)
    ckpt = checkpoints.load(path, needs=("state_dict", "hyper_parameters"))
    assert ckpt.task == {"detector": "detector", "mnist": "reader"}[name]
    assert "optimizer_states" not in ckpt.state  # trimmed
    assert load_task(path).training is False
    card = pretrained.card(name).read_text()
    for needed in ("## Command", "## Data", "## Metrics", "## Licences", "digitrec-train"):
        assert needed in card, f"{pretrained.card(name)} lacks {needed!r}"
    assert re.search(r"commit [0-9a-f]{7}", card)


def test_the_shipped_models_fit_the_box():
    total = sum(pretrained.path(n).stat().st_size for n in pretrained.MODELS)
    assert total <= 20e6


def _run(capsys, *argv):
    code = predict.main([*map(str, argv)])
    out = capsys.readouterr()
    return code, [json.loads(line) for line in out.out.splitlines() if line.strip()], out.err


def test_predict_without_a_model_reads_the_example_with_the_shipped_detector(capsys):
    code, (line,), _ = _run(capsys, EXAMPLE)
    assert code == 0 and set(line) >= {"file", "number", "confidence", "box", "candidates"}
    assert all(
        set(c) >= {"number", "score", "box", "orientation", "digits"} for c in line["candidates"]
    )


def test_tiny_huge_and_empty_photos_never_crash(tmp_path, capsys):
    Image.new("RGB", (1, 1), (90, 90, 90)).save(tmp_path / "one.png")
    Image.new("RGB", (640, 480), (200, 190, 180)).save(tmp_path / "wall.jpg")
    # 12000 x 12000: over the 50 Mpx default, a JPEG is decoded at a reduced scale
    Image.new("L", (12000, 12000), 128).save(tmp_path / "huge.jpg", quality=50)
    code, lines, err = _run(
        capsys, tmp_path / "one.png", tmp_path / "wall.jpg", tmp_path / "huge.jpg"
    )
    by_name = {p["file"].rsplit("/", 1)[-1]: p for p in lines}
    assert set(by_name) == {"one.png", "wall.jpg", "huge.jpg"}
    for name, line in by_name.items():
        assert "error" in line or line["number"] == "", (name, line)  # no number in any of them
    assert "Traceback" not in err
    assert code in (0, 1)


def test_a_missing_box_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(pretrained, "HERE", tmp_path)
    with pytest.raises(FileNotFoundError, match="not in this copy of digitrec"):
        pretrained.path("detector")
    with pytest.raises(ValueError, match="expected one of"):
        pretrained.path("nope")


def test_pack_trims_and_halves(tmp_path):
    out = pretrained.pack(pretrained.path("detector"), "detector", out_dir=tmp_path)
    state = checkpoints.load(out).state
    floats = {v.dtype for v in state["state_dict"].values() if v.is_floating_point()}
    assert floats == {torch.float16} and "optimizer_states" not in state
