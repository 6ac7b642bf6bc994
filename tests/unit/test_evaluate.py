"""digitrec-evaluate: suites on a checkpoint, a folder of labelled images, the image → reader input
conversion, and the one-line failures (exit 2) and per-file errors (exit 1)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from conftest import make_glyphs
from helpers import save_checkpoint
from omegaconf import OmegaConf
from PIL import Image

from digitrec.cli.evaluate import main
from digitrec.data import suites
from digitrec.inference.preprocessing import to_reader_input
from digitrec.tasks import BoxLocalizer, DigitReader, load_task

GRAY_NET = dict(in_channels=1, height=28, width=112, depth=3, widths=[8, 8, 16], fc=[32])
RGB_NET = dict(in_channels=3, height=54, width=54, depth=3, widths=[8, 8, 16], fc=[32])
LOCALIZER_NET = dict(in_channels=3, size=32, widths=[8, 8], blocks=1, fc=16)
METRICS = {"sequence_accuracy", "digit_accuracy", "length_accuracy", "coverage_at_98"}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("ckpt")
    return {
        "gray": save_checkpoint(DigitReader(**GRAY_NET), root / "gray.ckpt"),
        "rgb": save_checkpoint(DigitReader(**RGB_NET), root / "rgb.ckpt"),
        "localizer": save_checkpoint(BoxLocalizer(**LOCALIZER_NET), root / "localizer.ckpt"),
    }


def number_image(digits: str, seed: int = 0) -> np.ndarray:
    """White bar-glyph digits on black (conftest.make_glyphs), side by side: (28, 28 * len)."""
    glyphs, labels = make_glyphs(200, seed)
    return np.concatenate([glyphs[np.flatnonzero(labels == int(d))[0]] for d in digits], axis=1)


def write_labels(folder, rows, header=("file", "number", "note")):
    with open(folder / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def folder(tmp_path):
    """3 good images (28x112; 40x100 RGB; dark on light 28x56), a corrupt one, a missing one."""
    d = tmp_path / "numbers"
    d.mkdir()
    Image.fromarray(number_image("0123")).save(d / "a.png")  # 28x112, as read
    Image.fromarray(
        np.repeat(np.pad(number_image("45"), ((6, 6), (22, 22)))[..., None], 3, 2)
    ).resize((100, 40)).save(d / "b.png")
    (d / "sub").mkdir()
    Image.fromarray(255 - number_image("67")).save(d / "sub" / "c.png")  # dark ink, light paper
    (d / "bad.png").write_bytes(np.random.default_rng(0).bytes(300))
    return d


GOOD = [("a.png", "0123", "leading zero"), ("b.png", "45", ""), ("sub/c.png", "67", "")]


def test_folder_reports_each_file_and_totals(checkpoints, folder, capsys):
    write_labels(
        folder, [GOOD[0], ("bad.png", "9", "corrupt"), GOOD[1], ("missing.png", "12", ""), GOOD[2]]
    )
    assert main([str(checkpoints["gray"]), "--folder", str(folder)]) == 1
    captured = capsys.readouterr()
    *files, totals = json_lines(captured.out)
    assert [r["file"] for r in files] == ["a.png", "bad.png", "b.png", "missing.png", "sub/c.png"]
    errors = [r for r in files if "error" in r]
    readings = [r for r in files if "predicted" in r]
    assert [r["file"] for r in errors] == ["bad.png", "missing.png"]
    assert all(set(r) == {"file", "error"} for r in errors)
    assert len(readings) == 3 and readings[0]["number"] == "0123"  # a string, zero kept
    for r in readings:
        assert set(r) == {"file", "number", "predicted", "confidence", "correct"}
        assert r["correct"] == (r["predicted"] == r["number"]) and 0 <= r["confidence"] <= 1
    assert totals["total"] is True
    assert (totals["files"], totals["read"], totals["errors"], totals["n"]) == (5, 3, 2, 3)
    assert totals["sequence_accuracy"] == pytest.approx(
        np.mean([r["correct"] for r in readings]), abs=1e-4
    )
    assert METRICS <= set(totals)
    assert "bad.png" in captured.err and "missing.png" in captured.err

    write_labels(folder, GOOD)  # all readable → exit 0; --batch-size 2 splits the readings
    assert main([str(checkpoints["gray"]), "--folder", str(folder), "--batch-size", "2"]) == 0
    *files, totals = json_lines(capsys.readouterr().out)
    assert len(files) == 3 and (totals["read"], totals["errors"]) == (3, 0)


def test_folder_refuses_escaping_paths_and_bad_labels(checkpoints, folder, capsys):
    (folder.parent / "outside.png").write_bytes((folder / "a.png").read_bytes())
    write_labels(
        folder,
        [
            GOOD[0],
            ("../outside.png", "12", ""),
            ("a.png", "12a", ""),
            ("a.png", "123456", ""),
            ("a.png", "", ""),
        ],
    )
    assert main([str(checkpoints["gray"]), "--folder", str(folder)]) == 1
    *files, totals = json_lines(capsys.readouterr().out)
    assert [("error" in r) for r in files] == [False, True, True, True, True]
    assert "outside" in files[1]["error"] and "1 to 5 digits" in files[2]["error"]
    assert (totals["read"], totals["errors"]) == (1, 4)


def test_missing_or_malformed_labels_exit_2_with_one_line(checkpoints, folder, capsys):
    args = [str(checkpoints["gray"]), "--folder", str(folder)]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "labels.csv: no such file" in captured.err and "file,number" in captured.err
    write_labels(folder, [("a.png", "0123")], header=("image", "label"))
    assert main(args) == 2
    assert "file,number" in capsys.readouterr().err


def test_checkpoint_that_is_not_a_reader_exits_2(checkpoints, folder, tmp_path, capsys):
    write_labels(folder, GOOD)
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    for name, says in (
        (checkpoints["localizer"], "expected a DigitReader"),
        (tmp_path / "junk.ckpt", "not a DigitReader checkpoint"),
        (tmp_path / "none.ckpt", "no such checkpoint"),
    ):
        assert main([str(name), "--folder", str(folder)]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1
        assert str(name) in captured.err and says in captured.err


def test_suites_on_the_test_glyphs(checkpoints, fake_data_dir, capsys, monkeypatch):
    assert isinstance(load_task(checkpoints["gray"]), DigitReader)
    threads = []
    monkeypatch.setattr(torch, "set_num_threads", threads.append)  # leave the process's as is
    args = [str(checkpoints["gray"]), "--data-dir", str(fake_data_dir), "--no-verify"]
    assert main([*args, "--suite", "touching", "--suite", "fixed_pitch", "--threads", "1"]) == 0
    assert threads == [1]
    captured = capsys.readouterr()
    records = json_lines(captured.out)
    assert [r["suite"] for r in records] == ["touching", "fixed_pitch"]
    for r in records:
        cfg = OmegaConf.load(suites.EVAL_DIR / f"{r['suite']}.yaml")
        assert r["n"] == cfg.n
        assert METRICS <= set(r)
        assert {f"sequence_accuracy_len{k}" for k in range(2, 6)} <= set(r)
        assert "sequence_accuracy_len1" not in r  # both suites start at 2 digits
    assert "touching" in captured.err and "fixed_pitch" in captured.err  # the table

    assert main([*args, "--suite", "touching", "--suite", "nonesuch"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert all(name in captured.err for name in ("nonesuch", "fixed_pitch", "touching"))


def test_suites_need_a_gray_reader_and_a_mode(checkpoints, fake_data_dir, capsys):
    assert (
        main(
            [
                str(checkpoints["rgb"]),
                "--suite",
                "touching",
                "--no-verify",
                "--data-dir",
                str(fake_data_dir),
            ]
        )
        == 2
    )
    assert "3-channel" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main([str(checkpoints["gray"])])  # neither --suite nor --folder
    assert e.value.code == 2


def test_to_reader_input_inverts_keeps_aspect_and_passes_exact_sizes():
    digit = number_image("8")  # white on black, 28x28
    rgb = np.repeat(digit[..., None], 3, axis=2)

    # exact size: unchanged
    exact = np.repeat(number_image("0123")[..., None], 3, axis=2)
    assert np.array_equal(to_reader_input(exact, 1, 28, 112), exact[..., 0])

    # a 28x28 image on a 28x112 canvas: centered at its size, black either side, not stretched
    out = to_reader_input(rgb, 1, 28, 112)
    assert out.shape == (28, 112) and out.dtype == np.uint8
    assert np.array_equal(out[:, 42:70], digit)
    assert not out[:, :42].any() and not out[:, 70:].any()

    # dark on light → inverted to white on black
    assert np.array_equal(to_reader_input(255 - rgb, 1, 28, 112)[:, 42:70], digit)

    # larger image: shrunk to fit (56x56 → 28x28), still centered
    big = np.repeat(np.kron(digit, np.ones((2, 2), np.uint8))[..., None], 3, axis=2)
    out = to_reader_input(big, 1, 28, 112)
    assert not out[:, :42].any() and not out[:, 70:].any() and out[:, 42:70].any()

    # a wide image: fits the width, centered vertically
    wide = np.zeros((10, 224, 3), np.uint8)
    wide[:, 100:124] = 255
    out = to_reader_input(wide, 1, 28, 112)
    assert not out[:11].any() and not out[16:].any() and out[11:16].any()

    # 3 channels: resized to the reader's size, colors kept
    color = np.zeros((80, 40, 3), np.uint8)
    color[..., 0] = 200
    out = to_reader_input(color, 3, 54, 54)
    assert out.shape == (54, 54, 3) and (out[..., 0] == 200).all() and not out[..., 1:].any()
    same = np.zeros((54, 54, 3), np.uint8)
    assert to_reader_input(same, 3, 54, 54) is same
