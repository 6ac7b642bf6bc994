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
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines  # one line: no usage block above it
    assert e.value.code == 2 and f"argument {flag}:" in lines[0] and "--help" in lines[0]


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


def test_notmnist_labels_out_of_range_are_one_line_even_unverified(tmp_path):
    import numpy as np
    from conftest import make_glyphs

    from digitrec.data.idx import write_idx
    from digitrec.data.notmnist import SAMPLE_FILES, load_notmnist

    images, labels = make_glyphs(50, 0)
    labels = labels.copy()
    labels[3] = 12  # a letter past J
    for key, array in (("images", images), ("labels", labels)):
        write_idx(tmp_path / "notmnist" / f"{SAMPLE_FILES[key].name}.gz", array)
    with pytest.raises(ValueError, match=r"a label of 12; notMNIST labels are 0-9 \(the letters"):
        load_notmnist(tmp_path, download=False, verify=False)
    labels[3] = 4
    write_idx(tmp_path / "notmnist" / f"{SAMPLE_FILES['labels'].name}.gz", labels)
    assert np.array_equal(
        np.sort(
            np.concatenate(
                [v for k, v in load_notmnist(tmp_path, verify=False).items() if "labels" in k]
            )
        ),
        np.sort(labels),
    )


def test_16_bit_images_are_converted_in_bands_not_whole():
    """Issue 30 case 9: a 16-bit image becomes 8-bit RGB a band of about 1 Mpx at a time, so the
    arrays alive at once are the output and one band, not float copies of the whole image."""
    import tracemalloc

    import numpy as np
    from PIL import Image

    from digitrec.inference.images import to_rgb

    h, w = 4000, 4000  # 16 Mpx: a whole float32 copy alone would be 64 MB
    image = Image.fromarray(np.tile(np.arange(w, dtype=np.uint16) * 16, (h, 1)))
    assert image.mode == "I;16"
    tracemalloc.start()
    try:
        rgb = to_rgb(image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rgb.shape == (h, w, 3) and rgb[0, w - 1, 0] == round((w - 1) * 16 / 257)
    assert peak < rgb.nbytes + 24e6, (
        f"peak {peak / 1e6:.0f} MB for a {rgb.nbytes / 1e6:.0f} MB image"
    )


def test_refused_and_old_checkpoints_are_one_line_and_never_suggest_unsafe_loading(tmp_path, capfd):
    """Issue 30 case 16: a pickle that would run code is refused in one line, without torch's
    advice to load with weights_only=False; a checkpoint in torch's old (non-zip) format loads;
    predicting prints no MLflow type-hint warning."""
    import pickle

    import torch

    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"state_dict": os.system}))
    old = tmp_path / "old.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, old, _use_new_zipfile_serialization=False)
    photo = tmp_path / "p.png"
    from PIL import Image

    Image.new("RGB", (64, 48), "white").save(photo)
    assert predict.main([str(evil), str(photo)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "evil.ckpt" in err[0], err
    assert "weights_only" not in err[0].replace("a weights-only load", "")
    from digitrec import checkpoints

    assert list(checkpoints.load(old).state["state_dict"]) == ["w"]
    assert predict.main([str(photo)]) == 0  # the shipped detector
    assert "type hint" not in capfd.readouterr().err


def test_labels_csv_is_streamed_row_by_row(tmp_path):
    """Issue 30 case 4: digitrec-evaluate --folder reads labels.csv one row at a time: the rows
    before a broken part are yielded before the error, which names the last line read."""
    from digitrec.evaluation.folders import UsageError, read_labels

    rows = "".join(f"img{i}.png,{i}\n" for i in range(3000))
    (tmp_path / "labels.csv").write_bytes(b"file,number\n" + rows.encode() + b"bad\xff,1\n")
    stream, got = read_labels(tmp_path), []
    assert not isinstance(stream, list)
    with pytest.raises(UsageError, match=r"labels.csv: cannot read it after line \d+ \('utf-8'"):
        for row in stream:  # decoded in buffered chunks: the error comes with the chunk
            got.append(row)
    assert len(got) > 2000 and got[0] == ("img0.png", "0")
    (tmp_path / "labels.csv").write_text("name,label\nimg0.png,0\n")
    with pytest.raises(UsageError, match=r"expected a CSV with the header file,number"):
        read_labels(tmp_path)  # the header is checked at once, before any row
