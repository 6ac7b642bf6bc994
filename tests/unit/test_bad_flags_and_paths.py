"""Bad input, round two (issue 30), the cases fixed so far: flag values refused by argparse before
anything is created, --annotate keeping inputs apart, a FIFO refused without blocking, and
labels.csv paths confined to their folder in digitrec-evaluate-photos."""

import os

import pytest

from digitrec.cli import predict, serve
from digitrec.cli.predict import annotated_name
from digitrec.evaluation.photos import folder_items
from digitrec.inference.images import ImageError, load_image


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["x.jpg", "--threads", "-1"], "--threads"),
        (["x.jpg", "--max-mpx", "0"], "--max-mpx"),
        (["x.jpg", "--max-mpx", "nan"], "--max-mpx"),
        (["x.jpg", "--every", "0"], "--every"),
        (["x.jpg", "--sizes", "500"], "--sizes"),
        (["x.jpg", "--fallback", "2"], "--fallback"),
    ],
)
def test_predict_refuses_bad_flag_values_in_one_line(argv, flag, capsys):
    with pytest.raises(SystemExit) as e:
        predict.main(argv)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 2 and f"argument {flag}:" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--port", "99999"], "--port"),
        (["--tls", "/missing.pem", "/missing.key"], "--tls"),
        (["--workers", "0"], "--workers"),
        (["--max-mb", "-1"], "--max-mb"),
    ],
)
def test_serve_refuses_bad_flag_values_before_it_starts(argv, flag, capsys):
    with pytest.raises(SystemExit) as e:
        serve.main(argv)
    out = capsys.readouterr()
    assert e.value.code == 2 and f"argument {flag}:" in out.err and "https://" not in out.out


def test_annotated_copies_keep_their_relative_paths_inside_the_folder(tmp_path, monkeypatch):
    assert annotated_name("x.jpg", ".jpg").as_posix() == "x.jpg"
    assert annotated_name("sub/x.jpg", ".jpg").as_posix() == "sub/x.jpg"
    assert annotated_name("/abs/x.png", ".png").as_posix() == "abs/x.png"
    assert annotated_name("../x.jpeg", ".jpg").as_posix() == "__/x.jpg"
    assert annotated_name("photos/a/x.jpg", ".jpg", root="photos").as_posix() == "a/x.jpg"
    monkeypatch.chdir(tmp_path)
    assert annotated_name(str(tmp_path / "in" / "x.jpg"), ".jpg").as_posix() == "in/x.jpg"


def test_a_fifo_named_like_a_photo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="not a regular file"):
        load_image(fifo)
    with pytest.raises(ImageError, match="not a regular file"):
        load_image(tmp_path)


@pytest.mark.parametrize("file", ["../outside.jpg", "/etc/passwd", "a/../../b.jpg"])
def test_evaluate_photos_keeps_labels_inside_their_folder(tmp_path, file):
    (tmp_path / "labels.csv").write_text(f"file,number\n{file},12\n")
    with pytest.raises(ValueError, match="outside"):
        folder_items(tmp_path)


def test_a_checkpoint_declaring_a_huge_network_without_its_weights_is_refused_unbuilt(tmp_path):
    import resource

    import torch

    from digitrec.checkpoints import CheckpointError
    from digitrec.tasks import load_task

    crafted = tmp_path / "crafted.ckpt"
    torch.save(
        {
            "state_dict": {},
            "hyper_parameters": {"widths": [4096] * 5, "head_width": 4096},
            "digitrec": {"format": 1, "task": "detector"},
        },
        crafted,
    )
    assert crafted.stat().st_size < 4096
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="no weights for 'net.stages.0.0.0.weight'"):
        load_task(crafted)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200  # the 4096-wide network (GBs) was never allocated


def test_a_jpeg_decoded_reduced_is_answered_in_the_photos_pixels(tmp_path, capsys):
    """Over --max-mpx a JPEG is decoded at 1/2..1/8 scale; boxes still come in its own pixels."""
    import json

    from PIL import Image

    from digitrec.inference.images import load_image_scaled
    from digitrec.inference.pipeline import Reading

    Image.new("RGB", (4000, 2000), (128, 128, 128)).save(tmp_path / "big.jpg", quality=40)
    image, factor = load_image_scaled(tmp_path / "big.jpg", max_pixels=2_000_000)
    assert image.shape[:2] == (1000, 2000) and factor == 2.0
    reading = Reading(
        "12", 0.9, [10, 20, 30, 40], [{"box": [10, 20, 30, 40], "digits": [[1, 2, 3, 4]]}]
    )
    scaled = reading.scaled(factor)
    assert scaled.box == [20, 40, 60, 80] and scaled.candidates[0]["digits"] == [[2, 4, 6, 8]]
    # end to end: the whole-photo box of a photo without a number spans the photo's own pixels
    predict.main([str(tmp_path / "big.jpg"), "--max-mpx", "2"])
    line = json.loads(capsys.readouterr().out.splitlines()[0])
    assert line["box"] == [0.0, 0.0, 4000.0, 2000.0]


def test_a_failed_download_is_an_expected_one_line_failure():
    from digitrec.data.download import DownloadError
    from digitrec.training.errors import describe, expected

    e = DownloadError("MNIST is not in /x/mnist and could not be fetched; tried: ...")
    assert isinstance(e, OSError) and expected(e)
    assert "\n" not in describe(e) and "could not be fetched" in describe(e)


def test_mnist_labels_out_of_range_are_one_line_even_unverified(tmp_path):
    import numpy as np
    from conftest import make_glyphs

    from digitrec.data.idx import write_idx
    from digitrec.data.mnist import MNIST_FILES, load_mnist

    images, labels = make_glyphs(50, 0)
    labels = labels.copy()
    labels[7] = 200
    arrays = {"train_images": images, "train_labels": labels}
    arrays |= {"test_images": images, "test_labels": np.zeros(50, np.uint8)}
    for key, spec in MNIST_FILES.items():
        write_idx(tmp_path / "mnist" / f"{spec.name}.gz", arrays[key])
    with pytest.raises(ValueError, match="a label of 200; MNIST labels are the digits 0-9"):
        load_mnist(tmp_path, download=False, verify=False)
