"""Reading photos: scenes, the localizer, the two-stage pipeline, digitrec-predict (files and
video), export parity, and the web app (over HTTP here; in a browser in test_browser.py)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from conftest import compose_cfg, new_store
from photo_fixtures import READER_NET, _post, photo
from PIL import Image

from digitrec.cli import evaluate_photos as evaluate
from digitrec.cli import export, predict
from digitrec.data import scenes
from digitrec.datamodules import SceneDataModule
from digitrec.evaluation import photos
from digitrec.inference import export as export_lib
from digitrec.inference.images import ImageError, decode_image, expand_inputs, load_image
from digitrec.inference.pipeline import PhotoReader
from digitrec.models.localizer import box_iou
from digitrec.serving import app as serving_app
from digitrec.tasks import BoxLocalizer, DigitReader, load_task


# ------------------------------------------------------------------------------- geometry
def test_iou_and_giou_of_known_boxes():
    a = torch.tensor([[0, 0, 2, 2], [0, 0, 1, 1], [0, 0, 1, 1.0]])
    b = torch.tensor([[1, 1, 3, 3], [0, 0, 1, 1], [2, 0, 3, 1.0]])
    assert torch.allclose(box_iou(a, b), torch.tensor([1 / 7, 1.0, 0.0]))
    # disjoint boxes: GIoU goes below 0 by the empty share of the hull (1 of 3)
    assert torch.allclose(box_iou(a, b, generalized=True)[1:], torch.tensor([1.0, -1 / 3]))


def test_compose_moves_the_box_with_the_pasted_image():
    rng = np.random.default_rng(0)
    source = np.zeros((40, 80, 3), np.uint8)
    source[10:30, 20:60] = 255  # the "number": a white block at x 20-60, y 10-30
    for _ in range(20):
        scene, moved = scenes.compose(
            rng, source, np.array([[20, 10, 60, 30]]), (80, 40), (320, 240), 320 / 240
        )
        x0, y0, x1, y1 = moved[0]
        assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240
        inside = scene[int(y0) + 2 : int(y1) - 2, int(x0) + 2 : int(x1) - 2]
        assert inside.min() >= 250  # the pasted white block is where the box says
        w = x1 - x0
        assert 0.15 * 320 / 2 - 2 <= w <= 0.6 * 320 / 2 + 2  # the block is half the source width


def test_zoomed_view_puts_the_number_where_its_box_says_at_a_later_looks_scale():
    rng = np.random.default_rng(0)
    source = np.zeros((96, 96, 3), np.uint8)  # a squashed source: the number is a white block
    source[40:60, 30:50] = 255
    for _ in range(20):
        view, (x0, y0, x1, y1) = scenes.zoomed_view(rng, source, np.array([30, 40, 50, 60]), 128)
        assert view.shape == (128, 128, 3)
        assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128  # the whole number is in view
        assert 0.2 * 128 - 1e-3 <= x1 - x0 <= 0.6 * 128 + 1e-3  # at scenes.ZOOMED of the width
        assert 0.75 * (x1 - x0) - 1e-3 <= y1 - y0 <= min(0.9 * 128, 4 / 3 * (x1 - x0)) + 1e-3
        # white exactly inside the box, dark just outside it (interpolation blurs s/2 pixels)
        mx, my = int(np.ceil((x1 - x0) / 40)) + 1, int(np.ceil((y1 - y0) / 40)) + 1
        assert view[int(y0) + my : int(y1) - my, int(x0) + mx : int(x1) - mx].min() >= 250
        cy, cx = int((y0 + y1) / 2), int((x0 + x1) / 2)
        for y, x in (
            (cy, int(x0) - mx),
            (cy, int(x1) + mx),
            (int(y0) - my, cx),
            (int(y1) + my, cx),
        ):
            if 0 <= x < 128 and 0 <= y < 128:
                assert view[y, x].max() < 250


def test_scene_datamodule_batches(rendered_root):
    dm = SceneDataModule(
        str(rendered_root),
        size=64,
        source_size=48,
        val_size=8,
        test_size=6,
        batch_size=4,
        eval_batch_size=5,
        height=64,
        width=64,
    )
    dm.prepare_data()
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 64, 64) and batch["image"].dtype == torch.uint8
    box = batch["box"]
    assert ((box >= 0) & (box <= 1)).all() and (box[:, 2:] > box[:, :2]).all()
    assert len(dm.val_set.box) == 8 and len(dm.test_set.box) == 6 and dm.rendered
    zoomed = SceneDataModule(
        str(rendered_root),
        size=64,
        source_size=48,
        whole=0.0,
        zoomed=1.0,
        val_size=8,
        test_size=6,
        height=64,
        width=64,
    )
    zoomed.setup()
    widths = zoomed.val_set.box[:, 2] - zoomed.val_set.box[:, 0]
    assert ((widths >= 0.2 - 1e-4) & (widths <= 0.6 + 1e-4)).all()  # every one a later look's view
    with pytest.raises(ValueError, match="data.whole=0.8, data.zoomed=0.5"):
        SceneDataModule(str(rendered_root), whole=0.8, zoomed=0.5)
    with pytest.raises(ValueError, match="data.height=32"):
        SceneDataModule(str(rendered_root), size=64, height=32, width=64)


def test_localizer_experiment_trains_and_logs_iou(rendered_root, tmp_path):
    import mlflow

    from digitrec.training.train import train

    cfg = compose_cfg(
        [
            "experiment=localizer",
            f"data.root={rendered_root}",
            f"paths.data_dir={tmp_path}",
            f"tracking.uri=sqlite:///{new_store(tmp_path / 'mlflow.db')}",
            f"tracking.artifact_root={tmp_path}/art",
            "data.size=32",
            "data.source_size=32",
            "data.val_size=8",
            "data.test_size=8",
            "data.batch_size=8",
            "model.widths=[8,8,8]",
            "model.blocks=1",
            "model.fc=16",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
        ],
        tmp_path,
    )
    metrics = train(cfg)
    assert 0 <= metrics["test/mean_iou"] <= 1 and 0 <= metrics["test/iou50"] <= 1
    assert "val/mean_iou" in metrics
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.search_runs([client.get_experiment_by_name("localizer").experiment_id])[0]
    assert run.info.status == "FINISHED" and "test/iou50" in run.data.metrics
    assert "test_boxes.png" in {a.path for a in client.list_artifacts(run.info.run_id)}
    loaded = load_task(run.data.tags["best_checkpoint"])
    assert isinstance(loaded, BoxLocalizer) and loaded.net.input_shape == (3, 32, 32)
    # its MLflow model (PyTorch flavor, the checkpoint beside it), name and scene datasets
    assert run.info.run_name == "localizer-s0"
    mlflow.set_tracking_uri(str(cfg.tracking.uri))
    images = np.random.default_rng(0).integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)
    boxes = mlflow.pyfunc.load_model(run.data.tags["model_uri"]).predict(images)
    with torch.no_grad():
        expected = loaded(torch.from_numpy(images))
    np.testing.assert_allclose(boxes, expected.numpy(), atol=1e-5)
    local = mlflow.artifacts.download_artifacts(run.data.tags["model_uri"], dst_path=str(tmp_path))
    assert (tmp_path / local / "extra_files" / "localizer.ckpt").is_file()
    # and a localizer model URI is a localizer for the reading commands (--localizer runs:/...)
    from digitrec.registry import resolve

    checkpoint, bundled = resolve(run.data.tags["model_uri"], str(cfg.tracking.uri))
    assert checkpoint.name == "localizer.ckpt" and bundled is None
    assert isinstance(load_task(checkpoint), BoxLocalizer)
    inputs = {i.dataset.name: i for i in run.inputs.dataset_inputs}
    assert set(inputs) == {f"street-rendered-scenes-{s}" for s in ("train", "val", "test")}
    source = json.loads(inputs["street-rendered-scenes-test"].dataset.source)
    assert source["rendered"] is True and source["caches"]["test"]["file"].startswith("test-")


def test_photo_reader_experiment_checkpoint_reads_photos(rendered_root, tmp_path):
    from digitrec.training.train import train

    cfg = compose_cfg(
        [
            "experiment=photo_reader",
            f"data.root={rendered_root}",
            f"paths.data_dir={tmp_path}",
            f"tracking.uri=sqlite:///{new_store(tmp_path / 'mlflow.db')}",
            f"tracking.artifact_root={tmp_path}/art",
            "data.val_size=8",
            "data.batch_size=8",
            "data.eval_batch_size=8",
            "+trainer.max_steps=2",
            "trainer.max_epochs=1",
            "model.widths=[8,8,16,16,16]",
            "model.context_size=16",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
        ],
        tmp_path,
    )
    train(cfg)
    (best,) = (tmp_path / "output" / "checkpoints").glob("last.ckpt")
    reader = PhotoReader.from_checkpoints(best)
    assert reader.reader.mean_subtract and len(reader(photo()).box) == 4


# ---------------------------------------------------------------------------------- images
def test_images_in_every_mode_become_rgb(tmp_path):
    rgb = photo(30, 40)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert np.array_equal(load_image(tmp_path / "rgb.png"), rgb)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.jpg")
    assert load_image(tmp_path / "gray.jpg").shape == (30, 40, 3)
    rgba = np.dstack([rgb, np.zeros((30, 40), np.uint8)])  # fully transparent: white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert (load_image(tmp_path / "rgba.png") == 255).all()
    deep = (np.arange(30 * 40).reshape(30, 40) * 50).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    out = load_image(tmp_path / "deep.png")
    assert out.dtype == np.uint8 and out[..., 0].max() == round(deep.max() / 257)
    # EXIF orientation 6 (rotate 90° clockwise to view): a 40x30 file is a 30-wide portrait
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(tmp_path / "phone.jpg", exif=exif)
    assert load_image(tmp_path / "phone.jpg").shape == (40, 30, 3)
    data = (tmp_path / "rgb.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    for bad in ("cut.png", "missing.png"):
        with pytest.raises(ImageError, match=bad):
            load_image(tmp_path / bad)
    with pytest.raises(ImageError, match="upload: not a readable image"):
        decode_image(b"not an image")
    found = list(expand_inputs([str(tmp_path), str(tmp_path / "*.jpg"), "nothing-*.png"]))
    assert found.count(str(tmp_path / "phone.jpg")) == 2 and found[-1] == "nothing-*.png"


# -------------------------------------------------------------------------------- pipeline
def test_two_stage_reader_reads_any_photo_size(photo_reader):
    for h, w in ((480, 640), (37, 300), (900, 60)):
        reading = photo_reader(photo(h, w))
        x0, y0, x1, y1 = reading.box
        assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h
        assert 0 < reading.confidence <= 1 and set(reading.number) <= set("0123456789")
        assert json.loads(json.dumps(reading.to_dict()))["number"] == reading.number
    assert photo_reader.crops(photo(), [np.array([5, 5, 50, 30])]).shape == (1, 54, 54, 3)
    with pytest.raises(ValueError, match="RGB uint8"):
        photo_reader(photo()[..., 0])


class FixedLocalizer(torch.nn.Module):
    """Always answers the same normalized box, whatever it is shown."""

    def __init__(self, box):
        super().__init__()
        self.box = torch.tensor([box], dtype=torch.float32)
        self.net = torch.nn.Module()
        self.net.input_shape = (3, 32, 32)

    def forward(self, images):
        return self.box.expand(len(images), 4)


def test_second_look_zooms_into_the_first_box(photo_reader):
    reader = PhotoReader(
        photo_reader.reader, FixedLocalizer([0.5, 0.5, 0.55, 0.55]), zoom=3.0, looks=2
    )
    second, first, *scaled = reader.candidates(photo(400, 600))  # the last look first
    np.testing.assert_allclose(first, [300, 200, 330, 220])
    # the region is the first box 3x as large about its center: 270..360, 180..240
    region = np.array([270, 180, 360, 240])
    rw, rh = region[2] - region[0], region[3] - region[1]
    np.testing.assert_allclose(
        second, region[[0, 1, 0, 1]] + [0.5 * rw, 0.5 * rh, 0.55 * rw, 0.55 * rh], atol=1
    )
    assert len(scaled) == len(reader.scales)
    tiles = reader.tiles(photo(400, 600))  # the fallback's starting regions: 60% quarters
    assert [t.tolist() for t in tiles] == [
        [0, 0, 360, 240],
        [240, 0, 600, 240],
        [0, 160, 360, 400],
        [240, 160, 600, 400],
    ]
    assert len(reader.search(photo(400, 600), tiles)) == 4 * (2 + len(reader.scales))
    three = PhotoReader(photo_reader.reader, FixedLocalizer([0.5, 0.5, 0.55, 0.55]), looks=3)
    assert len(three.candidates(photo(400, 600))) == 3 + len(three.scales)
    big = PhotoReader(photo_reader.reader, FixedLocalizer([0.1, 0.1, 0.9, 0.9]))
    assert len(big.candidates(photo())) == 1  # a box that fills the photo: no second look


def test_reader_checkpoint_carries_mean_subtraction(checkpoints):
    reader = load_task(checkpoints[0])
    assert isinstance(reader, DigitReader) and reader.mean_subtract
    plain = DigitReader(mean_subtract=False, **READER_NET)
    plain.load_state_dict(reader.state_dict())
    plain.eval()
    dark, light = (torch.full((2, 3, 54, 54), v, dtype=torch.uint8) for v in (100, 160))
    with torch.no_grad():  # flat images of any brightness are the same after subtraction
        assert torch.allclose(reader(dark)[0], reader(light)[0], atol=1e-5)
        assert not torch.allclose(plain(dark)[0], plain(light)[0], atol=1e-3)


def test_scenes_folder_and_evaluate_photos(rendered_root, checkpoints, tmp_path, capsys):
    folder = scenes.write_scenes(rendered_root, "test", tmp_path / "scenes", n=4, progress=False)
    labels = scenes.read_labels(folder)
    assert len(labels) == 4
    for item in labels:
        image = load_image(folder / item["name"])
        assert (image.shape[1], image.shape[0]) == tuple(item["size"]) in scenes.SCENE_SIZES
        x0, y0, x1, y1 = item["box"]
        assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]
        assert item["number"].isdigit() and len(item["boxes"]) == len(item["number"])
    out = tmp_path / "result.json"
    assert (
        evaluate.main(
            [
                str(checkpoints[0]),
                "--localizer",
                str(checkpoints[1]),
                "--scenes",
                str(folder),
                "--out",
                str(out),
                "--no-track",
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["images"] == 4 and set(result["sequence_accuracy"]) == set(photos.WAYS)
    e = result["two_stage_errors"]
    wrong, elsewhere, small, misread = (e[k] for k in photos.MISSES)
    assert wrong == elsewhere + misread and small <= elsewhere
    # errors are counted only where the ground-truth crop was right
    assert wrong <= round(4 * result["sequence_accuracy"]["ground-truth crop"])
    assert "wrong where the ground-truth crop is right" in capsys.readouterr().out
    assert (
        evaluate.main(
            [
                str(checkpoints[0]),
                "--localizer",
                str(checkpoints[1]),
                "--scenes",
                str(tmp_path / "none"),
                "--no-track",
            ]
        )
        == 2
    )


def test_evaluate_photos_on_a_labelled_folder_and_an_svhn_folder(
    rendered_root, checkpoints, tmp_path, capsys
):
    """labels.csv photos (a corrupt one among them: an error line, the others read, exit 1) and
    a format-1 split folder (ground-truth crops from its boxes), logged as an MLflow run."""
    from mlflow import MlflowClient

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, (h, w) in enumerate(((480, 640), (300, 200))):
        Image.fromarray(photo(h, w, i)).save(photos / f"{i}.jpg")
    (photos / "bad.jpg").write_bytes(b"not a jpeg")
    (photos / "labels.csv").write_text(
        "file,number,crop\n0.jpg,12,full\nbad.jpg,7,full\n1.jpg,045,tight\n"
    )
    uri = f"sqlite:///{new_store(tmp_path / 'mlflow.db')}"
    out = tmp_path / "eval.json"
    code = evaluate.main(
        [
            str(checkpoints[0]),
            "--localizer",
            str(checkpoints[1]),
            "--folder",
            str(photos),
            "--svhn",
            str(rendered_root / "test"),
            "--out",
            str(out),
            "--uri",
            uri,
        ]
    )
    assert code == 1 and "bad.jpg" in capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["images"] == 2 + 12 and [e["file"] for e in result["errors"]] == ["bad.jpg"]
    assert result["n"] == {
        "ground-truth crop": 12,
        "two-stage": 14,
        "first look only": 14,
        "whole photo": 14,
    }
    assert result["by_group"]["two-stage"].keys() == {"full", "tight"}
    assert result["readings"][1]["number"] == "045"  # leading zeros kept
    lengths = result["by_length"]["two-stage"]
    assert sum(v["n"] for v in lengths.values()) == 14 and lengths["3"]["n"] >= 1
    (run,) = MlflowClient(uri).search_runs(
        [MlflowClient(uri).get_experiment_by_name("photo_eval").experiment_id]
    )
    assert run.data.metrics["two_stage/n"] == 14 and run.data.metrics["errors"] == 1
    assert run.data.tags["reader_checkpoint"].endswith("reader.ckpt")
    assert (
        evaluate.main([str(checkpoints[0]), "--folder", str(tmp_path / "none"), "--no-track"]) == 2
    )


# ------------------------------------------------------------------------ digitrec-predict
def test_predict_reads_a_folder_and_reports_the_corrupt_file(checkpoints, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photo(480, 640, 1)).save(folder / "a.jpg")
    Image.fromarray(photo(300, 200, 2)[..., 0]).save(folder / "b.png")
    (folder / "c.jpg").write_bytes(b"\xff\xd8\xff\xe0 garbage, not a JPEG")
    code = predict.main(
        [
            str(checkpoints[0]),
            str(folder),
            "--localizer",
            str(checkpoints[1]),
            "--annotate",
            str(tmp_path / "annotated"),
        ]
    )
    out = capsys.readouterr()
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert code == 1 and [line["file"].split("/")[-1] for line in lines] == [
        "a.jpg",
        "b.png",
        "c.jpg",
    ]
    assert {"number", "confidence", "box"} <= set(lines[0]) and "error" in lines[2]
    assert "c.jpg" in lines[2]["error"] and "could not be read" in out.err
    annotated = sorted(p.name for p in (tmp_path / "annotated").iterdir())
    assert annotated == ["a.jpg", "b.png"]
    assert Image.open(tmp_path / "annotated" / "a.jpg").size == (640, 480)
    assert predict.main([str(checkpoints[0]), str(folder / "a.jpg")]) == 0  # no localizer
    assert predict.main([str(tmp_path / "none.ckpt"), str(folder)]) == 2
    assert "none.ckpt: no such checkpoint" in capsys.readouterr().err


def test_predict_annotates_a_generated_video(checkpoints, tmp_path, capsys):
    import cv2

    video = tmp_path / "street.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for i in range(6):
        writer.write(photo(120, 160, i))
    writer.release()
    out = tmp_path / "street.read.avi"
    assert (
        predict.main(
            [
                str(checkpoints[0]),
                "--localizer",
                str(checkpoints[1]),
                "--video",
                str(video),
                "--out",
                str(out),
                "--every",
                "2",
            ]
        )
        == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["frame"] for line in lines] == [0, 2, 4] and "number" in lines[0]
    capture = cv2.VideoCapture(str(out))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 6 and capture.get(cv2.CAP_PROP_FRAME_WIDTH) == 160
    assert predict.main([str(checkpoints[0]), "--video", str(tmp_path / "no.avi")]) == 2


# ---------------------------------------------------------------------------------- export
def test_torchscript_and_onnx_exports_match_pytorch(checkpoints, tmp_path):
    assert (
        export.main(
            [str(checkpoints[0]), "--localizer", str(checkpoints[1]), "--out", str(tmp_path)]
        )
        == 0
    )
    meta = json.loads((tmp_path / "export.json").read_text())
    reader = load_task(checkpoints[0])
    images = torch.randint(0, 256, (3, 3, 54, 54), dtype=torch.uint8)
    with torch.no_grad():
        ref = reader(images)
    for fmt, run in (("torchscript", export_lib.run_torchscript), ("onnx", export_lib.run_onnx)):
        got = run((tmp_path / meta["reader"][fmt]["file"]).read_bytes(), images)
        for a, b in zip(ref, got, strict=True):
            np.testing.assert_allclose(a.numpy(), b, atol=1e-4)
        assert meta["localizer"][fmt]["max_abs_difference"] < 1e-4


def test_a_failed_export_leaves_nothing_behind(checkpoints, tmp_path):
    out = tmp_path / "exported"
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    assert export.main([str(checkpoints[0]), "--localizer", str(bad), "--out", str(out)]) == 2
    assert export.main([str(bad), "--out", str(out)]) == 2
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.ckpt"]


# ------------------------------------------------------------------------------- web app
@pytest.fixture(scope="module")
def server(photo_reader):
    srv = serving_app.make_server(photo_reader, port=0, max_mb=0.5)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()


def test_web_app_reads_uploads_and_refuses_bad_ones(server, photo_reader, tmp_path):
    import io

    image = photo(240, 320, 7)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    status, answer = _post(server, buffer.getvalue(), "image/png")
    assert status == 200 and answer["number"] == photo_reader(image).number
    assert (answer["width"], answer["height"]) == (320, 240) and len(answer["box"]) == 4
    assert _post(server, b"\x89PNG\r\n\x1a\n" + b"0" * 4_000_000, "image/png")[0] == 413
    status, answer = _post(server, b"hello", "text/plain")
    assert status == 415 and "JPEG or PNG" in answer["error"]
    status, answer = _post(server, b"\x89PNG\r\n\x1a\n broken", "image/png")
    assert status == 400 and "not a readable image" in answer["error"]
    with urllib.request.urlopen(server + "/", timeout=10) as r:
        assert b'<input type="file"' in r.read()
