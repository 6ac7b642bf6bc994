"""A checkpoint says what it is: its task and preprocessing travel with it, one loader reads every
checkpoint (today's and those written before the restructure), with one set of one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import save_checkpoint

from digitrec import checkpoints
from digitrec.checkpoints import CheckpointError
from digitrec.inference.pipeline import PhotoReader, WholeImageReader, open_reader
from digitrec.tasks import BoxLocalizer, DigitReader, load_task

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"
READER_NET = dict(in_channels=3, height=54, width=54, depth=2, widths=[4, 8], fc=[16])


def test_checkpoints_written_before_the_restructure_read_the_same_numbers():
    """tests/fixtures/legacy: a reader trained by the code of 763ebb9 (no `digitrec` entry) and
    the numbers it read then; the tests' SVHN reader + localizer of that day and their readings."""
    expected = json.loads((LEGACY / "expected.json").read_text())
    inputs = np.load(LEGACY / "inputs.npz")
    reader = open_reader(LEGACY / "mnist_reader.ckpt")
    assert isinstance(reader, WholeImageReader)
    assert (
        sum(
            n == t
            for n, t in zip(
                [e["number"] for e in expected["mnist"]], expected["mnist_truth"], strict=True
            )
        )
        >= 8
    )
    for image, want in zip(inputs["mnist"], expected["mnist"], strict=True):
        got = reader(np.repeat(image[..., None], 3, axis=2))
        assert got.number == want["number"]
        assert got.confidence == pytest.approx(want["confidence"], abs=1e-5)
    photo = PhotoReader.from_checkpoints(LEGACY / "svhn_reader.ckpt", LEGACY / "localizer.ckpt")
    assert (photo.expand, photo.image_size, photo.crop) == (0.3, 64, 54)  # the legacy default
    for image, want in zip(inputs["photos"], expected["photos"], strict=True):
        got = photo(image).to_dict()
        assert got["number"] == want["number"]
        assert got["confidence"] == pytest.approx(want["confidence"], abs=2e-4)
        assert got["box"] == pytest.approx(want["box"], abs=0.2)


def test_legacy_checkpoints_get_their_task_from_the_hyperparameters():
    assert isinstance(load_task(LEGACY / "localizer.ckpt"), BoxLocalizer)
    reader = load_task(LEGACY / "mnist_reader.ckpt")
    assert isinstance(reader, DigitReader)
    assert reader.preprocessing == {"kind": "whole", "channels": 1, "height": 28, "width": 112}
    assert checkpoints.load(LEGACY / "mnist_reader.ckpt").task is None


def test_the_preprocessing_a_checkpoint_carries_is_what_inference_uses(tmp_path):
    reader = DigitReader(**READER_NET)
    reader.preprocessing = {"kind": "crop", "expand": 0.5, "image_size": 60, "crop": 54}
    path = save_checkpoint(reader, tmp_path / "reader.ckpt")
    ckpt = checkpoints.load(path)
    assert ckpt.task == "reader" and ckpt.preprocessing["expand"] == 0.5
    photo = PhotoReader.from_checkpoints(path)
    assert (photo.expand, photo.image_size, photo.crop) == (0.5, 60, 54)
    assert PhotoReader.from_checkpoints(path, expand=0.2).expand == 0.2  # an argument overrides


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"^init_from=.*none.ckpt: no such checkpoint file$"
    ):
        load_task(tmp_path / "none.ckpt", "init_from")
    (tmp_path / "text.ckpt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint") as e:
        load_task(tmp_path / "text.ckpt")
    assert "\n" not in str(e.value)
    reader = DigitReader(**READER_NET)
    state = {"state_dict": reader.state_dict(), "hyper_parameters": dict(reader.hparams)}
    torch.save({**state, "digitrec": {"format": 1, "task": "detector9"}}, tmp_path / "u.ckpt")
    with pytest.raises(CheckpointError, match="task 'detector9'; this digitrec knows reader"):
        load_task(tmp_path / "u.ckpt")
    torch.save({**state, "digitrec": {"format": 99, "task": "reader"}}, tmp_path / "new.ckpt")
    with pytest.raises(CheckpointError, match="written by a newer digitrec"):
        load_task(tmp_path / "new.ckpt")
    torch.save(
        {**state, "hyper_parameters": {**state["hyper_parameters"], "depth": 3}},
        tmp_path / "m.ckpt",
    )
    with pytest.raises(CheckpointError, match=r"its weights do not fit a DigitReader") as e:
        load_task(tmp_path / "m.ckpt")
    assert "\n" not in str(e.value)


def test_weight_decay_spares_biases_and_normalization():
    from digitrec.tasks.base import parameter_groups

    reader = DigitReader(**READER_NET)
    decay, no_decay = parameter_groups(reader)
    assert no_decay["weight_decay"] == 0.0 and "weight_decay" not in decay
    assert all(p.dim() >= 2 for p in decay["params"]) and all(
        p.dim() == 1 for p in no_decay["params"]
    )
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(reader.parameters()))
    bn = [m.weight for m in reader.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn and all(any(w is p for p in no_decay["params"]) for w in bn)
