"""SVHN format 1: the digitStruct reader (real fixtures), writer, preprocessing, cache, the
rendered stand-in and the datamodule."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tarfile
import urllib.error
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import REPO, compose_cfg, new_store, random_records
from helpers import unavailable

from digitrec.data import street, svhn
from digitrec.data.download import DownloadError
from digitrec.datamodules import SVHNDataModule, crop_batch


@pytest.fixture(scope="module")
def svhn_shared():
    """../shared/data/svhn (real labels and fixture files): skip locally, fail in CI."""
    path = os.environ.get("DIGITREC_DATA_DIR", str(REPO.parent / "shared" / "data"))
    root = Path(path) / "svhn"
    if not (root / "fixtures" / "train" / "digitStruct.mat").is_file():
        message = f"no SVHN fixtures under {root}/fixtures"
        unavailable(message)
    return root


def _same(a: list[svhn.Record], b: list[svhn.Record]) -> bool:
    return len(a) == len(b) and all(
        x.name == y.name and np.array_equal(x.boxes, y.boxes) for x, y in zip(a, b, strict=True)
    )


# ------------------------------------------------------------------------- real fixtures
def test_fixture_digit_structs_give_the_known_answers(svhn_shared):
    train = svhn.read_digit_struct(svhn_shared / "fixtures" / "train" / "digitStruct.mat")
    test = svhn.read_digit_struct(svhn_shared / "fixtures" / "test" / "digitStruct.mat")
    assert train[0].name == "1.png" and train[0].number == "19"
    assert test[1].name == "2.png" and test[1].number == "210"
    assert test[1].boxes[:, 0].tolist() == [2, 1, 10]  # label 10 is the digit 0
    assert train[0].boxes.tolist() == [[1, 246, 77, 81, 219], [9, 323, 81, 96, 219]]
    image = svhn._read_image(svhn_shared / "fixtures" / "train" / "1.png")
    assert image.shape == (350, 741, 3)
    for split in svhn.SPLITS:  # the fast reader agrees with the object-by-object walk
        path = svhn_shared / "fixtures" / split / "digitStruct.mat"
        fast = svhn.read_digit_struct(path)
        assert len(fast) >= 39 and _same(fast, svhn.read_digit_struct_slow(path))


def test_json_labels_agree_with_the_fixture_digit_struct(svhn_shared):
    labels = svhn.read_json_labels(svhn_shared / "labels" / "train.json.gz")
    assert len(labels) == 33402 and sum(len(r.boxes) for r in labels) == 73257
    assert labels[0].size == (741, 350)
    mat = svhn.read_digit_struct(svhn_shared / "fixtures" / "train" / "digitStruct.mat")
    assert _same(mat, labels[: len(mat)])


def test_fixture_images_preprocess_to_crops_holding_the_number(svhn_shared, tmp_path):
    root = tmp_path / "svhn"
    (root / "train").mkdir(parents=True)
    records = svhn.read_digit_struct(svhn_shared / "fixtures" / "train" / "digitStruct.mat")[:3]
    for r in records:
        (root / "train" / r.name).write_bytes(
            (svhn_shared / "fixtures" / "train" / r.name).read_bytes()
        )
    svhn.write_digit_struct(root / "train" / "digitStruct.mat", records)
    cache = svhn.load_cache(
        svhn.build_cache(root, "train", svhn.Preprocessing(), download=False, progress=False)
    )
    assert cache["images"].shape == (3, 64, 64, 3) and cache["length"].tolist()[0] == 2
    assert cache["digits"][0, :2].tolist() == [1, 9] and cache["size"][0].tolist() == [741, 350]
    # 1.png: union box 246..419 x 77..300 (173 x 223), x1.3 about (332.5, 188.5) = 220.05..444.95
    # x 43.55..333.45, rounded outwards
    assert cache["crop"][0].tolist() == [220, 43, 445, 334]


# ---------------------------------------------------------------------- writer ↔ reader
def _records(n: int, seed: int = 0) -> list[svhn.Record]:
    return random_records(n, seed, max_digits=6, size=(260, 120))


def test_written_digit_struct_reads_back_and_looks_like_matlab(tmp_path):
    records = _records(60)
    path = svhn.write_digit_struct(tmp_path / "digitStruct.mat", records)
    assert path.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    assert _same(svhn.read_digit_struct(path), records)
    assert _same(svhn.read_digit_struct_slow(path), records)
    with h5py.File(path) as f:  # the official layout
        assert f["digitStruct/name"].shape == (60, 1) and f["digitStruct/bbox"].shape == (60, 1)
        one, two = f[f["digitStruct/bbox"][0, 0]], f[f["digitStruct/bbox"][1, 0]]
        assert one["label"].dtype == np.float64 and one["label"].shape == (1, 1)
        assert two["label"].dtype == object and two["label"].shape == (2, 1)
        assert two.attrs["MATLAB_class"] == b"struct"
        assert f[f["digitStruct/name"][0, 0]].attrs["MATLAB_class"] == b"char"
    assert [p.name for p in tmp_path.iterdir()] == ["digitStruct.mat"]  # no temporary left


def test_bad_digit_struct_files_are_one_line_errors(tmp_path):
    not_hdf5 = tmp_path / "a.mat"
    not_hdf5.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    with pytest.raises(ValueError, match="a.mat: not a MATLAB v7.3"):
        svhn.read_digit_struct(not_hdf5)
    other = tmp_path / "b.mat"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(ValueError, match="b.mat: no digitStruct/name"):
        svhn.read_digit_struct(other)
    with pytest.raises(ValueError, match="c.json: not an SVHN label file"):
        (tmp_path / "c.json").write_text('{"a": 1}')
        svhn.read_json_labels(tmp_path / "c.json")


# ------------------------------------------------------------------------- preprocessing
def test_crop_resize_of_a_large_patch_is_an_area_average():
    import cv2

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (1500, 2000, 3), dtype=np.uint8), (0, 0), 8)
    box = [100, 50, 1900, 1450]  # 1800 x 1400 → 64: block averages first, then the rest
    ref = cv2.resize(image[50:1450, 100:1900], (64, 64), interpolation=cv2.INTER_AREA)
    out = svhn.crop_resize(image, box, 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - ref).max() <= 3
    small = svhn.crop_resize(image, [0, 0, 40, 30], 64)  # enlarging: untouched path
    assert small.shape == (64, 64, 3)


def test_crops_contain_every_digit_box():
    rng = np.random.default_rng(0)
    layouts = street.random_layouts(300, seed=1) + _records(300)
    for r in layouts:
        w, h = r.size
        for expand in (0.0, 0.3, 1.0):
            x0, y0, x1, y1 = svhn.crop_box(r.boxes, w, h, expand)
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            for _, left, top, bw, bh in r.boxes:  # every box, clipped to the image, is inside
                bx0, by0 = max(left, 0), max(top, 0)
                bx1, by1 = min(left + bw, w), min(top + bh, h)
                if bx0 < bx1 and by0 < by1:
                    assert x0 <= bx0 and y0 <= by0 and bx1 <= x1 and by1 <= y1
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        out, crop, inner = svhn.preprocess(image, r, svhn.Preprocessing())
        assert out.shape == (64, 64, 3) and (inner >= 0).all() and (inner <= 64).all()
        assert np.array_equal(crop, svhn.crop_box(r.boxes, w, h, 0.3))


def test_union_box_is_enlarged_by_30_percent_about_its_center():
    boxes = np.array([[1, 100, 50, 20, 40], [2, 120, 52, 30, 40]], float)  # union 100..150 x 50..92
    assert svhn.union_box(boxes).tolist() == [100, 50, 150, 92]
    # 50 x 42 → 65 x 54.6 about (125, 71)
    assert svhn.crop_box(boxes, 1000, 1000, 0.3).tolist() == [92, 43, 158, 99]
    assert svhn.crop_box(boxes, 140, 80, 0.3).tolist() == [92, 43, 140, 80]  # clipped


def test_long_number_policy_is_configurable_and_counted(tmp_path, caplog):
    records = _records(12)  # lengths 1..6, twice: two numbers of six digits
    root = tmp_path / "svhn"
    _write_images(root, "train", records)
    with caplog.at_level(logging.INFO):
        kept = svhn.load_cache(
            svhn.build_cache(root, "train", svhn.Preprocessing(), download=False, progress=False)
        )
        dropped = svhn.load_cache(
            svhn.build_cache(
                root,
                "train",
                svhn.Preprocessing(long_numbers="drop"),
                download=False,
                progress=False,
            )
        )
    assert len(kept["length"]) == 12 and (kept["length"] == 6).sum() == 2  # the class '>5'
    assert len(dropped["length"]) == 10 and dropped["length"].max() == 5
    assert "2 numbers longer than 5 digits kept as the length class '>5'" in caplog.text
    assert "2 numbers longer than 5 digits dropped" in caplog.text
    with pytest.raises(ValueError, match="data.long_numbers='keep'"):
        svhn.Preprocessing(long_numbers="keep")


def _write_images(root, split, records, seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    (root / split).mkdir(parents=True, exist_ok=True)
    for r in records:
        w, h = r.size
        cv2.imwrite(str(root / split / r.name), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    svhn.write_digit_struct(root / split / "digitStruct.mat", records)


# ----------------------------------------------------------------------------- the cache
def test_cache_is_keyed_by_the_preprocessing_and_never_half_written(tmp_path, monkeypatch):
    root = tmp_path / "svhn"
    _write_images(root, "train", _records(20))
    p = svhn.Preprocessing()
    first = svhn.build_cache(root, "train", p, download=False, progress=False)
    stamp = first.stat().st_mtime_ns
    assert svhn.build_cache(root, "train", p, download=False, progress=False) == first
    assert first.stat().st_mtime_ns == stamp  # reused, not rebuilt
    other = svhn.build_cache(
        root, "train", svhn.Preprocessing(size=48), download=False, progress=False
    )
    assert other != first and svhn.load_cache(other)["images"].shape[1:] == (48, 48, 3)
    assert svhn.load_cache(first)["images"].shape[1:] == (64, 64, 3)

    # a conversion that dies half way leaves neither the cache nor its temporary file
    calls = {"n": 0}
    real = svhn.preprocess

    def dies(*args):
        calls["n"] += 1
        if calls["n"] > 10:
            raise RuntimeError("killed")
        return real(*args)

    monkeypatch.setattr(svhn.cache, "preprocess", dies)  # where build_cache looks it up
    q = svhn.Preprocessing(expand=0.5)
    with pytest.raises(RuntimeError, match="killed"):
        svhn.build_cache(root, "train", q, download=False, progress=False, workers=1)
    assert not svhn.cache_path(root, "train", q).exists()
    assert sorted(p.name for p in (root / "cache").iterdir()) == sorted([first.name, other.name])

    # a file without the completion mark is refused with a one-line error
    bad = root / "cache" / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["images"] = np.zeros((1, 64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="bad.h5: incomplete cache"):
        svhn.load_cache(bad)


# ------------------------------------------------------------ rendered stand-in round trip
@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("street")
    fonts = street.find_fonts()[:4]
    layouts = {"train": street.random_layouts(50, seed=0), "test": street.random_layouts(30, 1)}
    for split, records in layouts.items():
        street.render_split(records, root, split, seed=3, workers=1, fonts=fonts, progress=False)
    return root, layouts


def test_rendered_dataset_round_trips_writer_reader_cache(rendered):
    root, layouts = rendered
    assert "SYNTHETIC" in (root / svhn.RENDERED_MARKER).read_text()
    for split, records in layouts.items():
        back = svhn.read_digit_struct(root / split / "digitStruct.mat")
        assert _same(back, records)
        cache = svhn.load_cache(
            svhn.build_cache(root, split, svhn.Preprocessing(), download=False, progress=False)
        )
        assert cache["rendered"] and len(cache["length"]) == len(records)
        for i, r in enumerate(records):
            n, digits = svhn.encode_labels(r.boxes, 5)
            assert cache["length"][i] == n and np.array_equal(cache["digits"][i], digits)
            assert cache["names"][i] == r.name and tuple(cache["size"][i]) == r.size
        image = svhn._read_image(root / split / records[0].name)
        assert image.shape[:2] == records[0].size[::-1] and image.std() > 5  # drawn, not blank


def test_rendered_digits_are_drawn_inside_their_boxes(rendered):
    root, layouts = rendered
    r = layouts["train"][0]
    image = svhn._read_image(root / "train" / r.name).astype(np.float32)
    x0, y0, x1, y1 = svhn.union_box(r.boxes).astype(int)
    inside = image[max(y0, 0) : y1, max(x0, 0) : x1]
    assert inside.std() > 10  # the number has contrast against its plate or wall


def test_svhn_datamodule_batches(rendered):
    root, layouts = rendered
    dm = SVHNDataModule(str(root), val_size=10, batch_size=8, eval_batch_size=16, seed=0)
    dm.prepare_data()
    dm.setup()
    assert dm.rendered and len(dm.train_set) == 40 // 8 and len(dm.val_set) == 10
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (8, 3, 54, 54) and batch["image"].dtype == torch.uint8
    assert (batch["box"] >= 0).all() and (batch["box"] <= 54).all()
    assert ((batch["digits"] >= 0).sum(1) == batch["length"].clamp(max=5)).all()
    test = next(iter(dm.test_dataloader()))
    assert test["image"].shape == (16, 3, 54, 54)
    cache = svhn.load_cache(svhn.cache_path(root, "test", dm.pre))
    assert np.array_equal(dm.test_set.images[0], cache["images"][0, 5:59, 5:59])  # center crop
    with pytest.raises(ValueError, match="data.val_size=500: expected 0..49"):
        SVHNDataModule(str(root), val_size=500).setup()


def test_crop_batch_takes_each_images_window():
    images = np.arange(2 * 8 * 8 * 3, dtype=np.int64).reshape(2, 8, 8, 3)
    boxes = np.array([[1, 1, 7, 7], [0, 0, 8, 8]], np.float32)
    out, moved = crop_batch(images, boxes, 5, np.array([0, 3]), np.array([2, 1]))
    assert np.array_equal(out[0], images[0, 2:7, 0:5]) and np.array_equal(
        out[1], images[1, 1:6, 3:8]
    )
    assert moved.tolist() == [[1, 0, 5, 5], [0, 0, 5, 5]]


@pytest.mark.parametrize("experiment", ["paper_svhn", "paper_svhn_fast"])
def test_paper_svhn_experiment_runs_on_the_rendered_stand_in(rendered, tmp_path, experiment):
    """The paper's recipe, and make reproduce-paper's CPU version of it (batch norm, AdamW,
    a third of the widths, no dropout)."""
    from digitrec.training.train import train

    root, _ = rendered
    cfg = compose_cfg(
        [
            f"experiment={experiment}",
            f"data.root={root}",
            f"paths.data_dir={tmp_path}",
            f"tracking.uri=sqlite:///{new_store(tmp_path / 'mlflow.db')}",
            f"tracking.artifact_root={tmp_path}/art",
            "data.val_size=10",
            "data.batch_size=8",
            "data.eval_batch_size=16",
            "+trainer.max_steps=2",
            "trainer.max_epochs=1",
            "+trainer.limit_val_batches=1",
            "+trainer.limit_test_batches=1",
            "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
        ],
        tmp_path,
    )
    fast = experiment == "paper_svhn_fast"
    assert cfg.model.widths[0] == (16 if fast else 48) and cfg.model.batch_norm is fast
    assert (cfg.model.fc_dropout == 0.0) is fast and cfg.model.maxout == 3
    assert cfg.model.in_channels == 3 and cfg.model.height == 54
    assert cfg.optimizer._target_.endswith("AdamW" if fast else "SGD")
    metrics = train(cfg)
    assert "test/sequence_accuracy" in metrics and 0 <= metrics["test/sequence_accuracy"] <= 1
    import mlflow

    runs = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_runs(
        [
            mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
            .get_experiment_by_name("svhn")
            .experiment_id
        ]
    )
    assert "rendered" in runs[0].data.tags["synthetic_data"]


# ------------------------------------------------------------------- download and extract
def test_archive_is_extracted_and_offline_download_is_one_line(tmp_path, monkeypatch):
    root = tmp_path / "svhn"
    root.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        src = tmp_path / "src"
        _write_images(src, "train", _records(3))
        tar.add(src / "train", arcname="train")
    data = buf.getvalue()
    (root / "train.tar.gz").write_bytes(data)
    monkeypatch.setitem(
        svhn.ARCHIVES, "train", ("train.tar.gz", len(data), hashlib.md5(data).hexdigest())
    )
    folder = svhn.ensure_split(root, "train")
    assert _same(svhn.read_digit_struct(folder / "digitStruct.mat"), _records(3))
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary folder

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(DownloadError, match="could not download SVHN test.tar.gz .*no network"):
        svhn.ensure_split(root, "test")
    with pytest.raises(FileNotFoundError, match="download disabled"):
        svhn.ensure_split(root, "test", download=False)
    (root / "test.tar.gz").write_bytes(data[:100])
    monkeypatch.setitem(
        svhn.ARCHIVES, "test", ("test.tar.gz", 100, hashlib.md5(data[:100]).hexdigest())
    )
    with pytest.raises(ValueError, match="test.tar.gz: unreadable or truncated archive"):
        svhn.ensure_split(root, "test")
    assert not (root / "test").exists()


def test_use_extra_adds_the_extra_split_to_training(rendered, tmp_path):
    root, layouts = rendered
    extra = street.random_layouts(20, seed=2)
    street.render_split(
        extra, root, "extra", seed=4, workers=1, fonts=street.find_fonts()[:2], progress=False
    )
    base = SVHNDataModule(str(root), val_size=10, batch_size=5)
    base.setup()
    more = SVHNDataModule(str(root), val_size=10, batch_size=5, use_extra=True)
    more.setup()
    assert more.splits == ("train", "extra", "test")
    assert more.train_set.n == base.train_set.n + 20 and len(more.val_set) == 10
    assert len(more.test_set) == len(base.test_set) == len(layouts["test"])


# ------------------------------------------------- folders labelled by the JSON form (real subsets)
def _write_json_labels(path, records) -> None:
    import gzip
    import json

    entries = [
        {
            "name": r.name,
            "width": r.size[0],
            "height": r.size[1],
            "boxes": [dict(zip(svhn.FIELDS, map(float, b), strict=True)) for b in r.boxes],
        }
        for r in records
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        json.dump(entries, f)


def test_a_png_folder_with_json_labels_is_a_split(rendered, tmp_path, monkeypatch, caplog):
    """PNGs without digitStruct.mat, labels from <root>/../labels/<split>.json.gz (the layout of
    $DIGITREC_DATA_DIR/svhn/real): the labelled PNGs present are the split; a read-only root
    caches under $XDG_CACHE_HOME."""
    import shutil

    src, layouts = rendered
    root = tmp_path / "svhn" / "real"
    (root / "test").mkdir(parents=True)
    present = layouts["test"][3:12]
    for r in present:
        shutil.copy(src / "test" / r.name, root / "test" / r.name)
    shutil.copy(src / "test" / layouts["test"][0].name, root / "test" / "unlabelled.png")
    _write_json_labels(tmp_path / "svhn" / "labels" / "test.json.gz", layouts["test"])
    with caplog.at_level(logging.WARNING):
        folder, records = svhn.split_records(root, "test", download=False)
    assert folder == root / "test" and _same(
        sorted(records, key=lambda r: r.name), sorted(present, key=lambda r: r.name)
    )
    assert "1 PNGs have no entry" in caplog.text
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if str(p) == str(root) else real_access(p, mode)
    )  # (root may write anywhere)
    path = svhn.build_cache(root, "test", svhn.Preprocessing(), download=False, progress=False)
    assert path.is_relative_to(tmp_path / "xdg" / "digitrec") and not (root / "cache").exists()
    cache = svhn.load_cache(path)
    assert len(cache["length"]) == len(present) and cache["rendered"] is False
    (tmp_path / "svhn" / "labels" / "test.json.gz").unlink()
    _write_json_labels(root / "test" / "labels.json.gz", layouts["train"][:3])  # none present
    with pytest.raises(ValueError, match="none of its 10 PNGs is labelled"):
        svhn.split_records(root, "test", download=False)


def test_real_svhn_subsets_are_splits_with_the_official_labels(svhn_shared, tmp_path, monkeypatch):
    """$DIGITREC_DATA_DIR/svhn/real: 262 train and 258 test PNGs, labelled from the JSON form,
    as data.root of the SVHN datamodule (caches outside the read-only shared folder)."""
    real = svhn_shared / "real"
    labels = {
        s: {r.name: r for r in svhn.read_json_labels(svhn_shared / "labels" / f"{s}.json.gz")}
        for s in ("train", "test")
    }
    for split, n in (("train", 262), ("test", 258)):
        folder, records = svhn.split_records(real, split, download=False)
        assert len(records) == n and all((folder / r.name).is_file() for r in records)
        assert all(np.array_equal(r.boxes, labels[split][r.name].boxes) for r in records)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    dm = SVHNDataModule(str(real), val_size=52, batch_size=8, download=False, seed=0)
    dm.prepare_data()
    dm.setup()
    assert len(dm.val_set) == 52 and len(dm.test_set) == 258 and not dm.rendered
    assert not any(p.name == "cache" for p in real.iterdir())


# ------------------------------------------------------------------------- renderer knobs
def _quiet(**kw) -> street.Style:
    """No effect after the digits (no low resolution, blur or JPEG): what was drawn stays."""
    return street.Style(lowres=0.0, blur=0.0, jpeg=0.0, **kw)


def test_renderer_is_deterministic_and_its_knobs_parse(rendered):
    root, layouts = rendered
    fonts = street.find_fonts()[:4]
    style = street.Style(backgrounds=str(root / "train"))
    for r in layouts["test"][:5]:
        a, b = (street.render(r, fonts, seed=7, style=style) for _ in range(2))
        assert np.array_equal(a, b) and a.shape == (r.size[1], r.size[0], 3)
        assert not np.array_equal(a, street.render(r, fonts, seed=8, style=style))
    parsed = street.Style.parse(
        ["words=0.5", "contrast=0.5,0.9", "palette=random", "backgrounds=/x"], street.Style.v1()
    )
    assert (parsed.words, parsed.contrast, parsed.palette, parsed.backgrounds) == (
        0.5,
        (0.5, 0.9),
        "random",
        "/x",
    ) and parsed.relief == 0.0
    for bad, match in (
        ("nope=1", "KEY=VALUE"),
        ("words=lots", "a number"),
        ("words=2", "share in"),
        ("palette=neon", "natural or random"),
        ("contrast=0.9,0.5", "0 < low <= high"),
    ):
        with pytest.raises(ValueError, match=match):
            street.Style.parse([bad])


def test_words_are_drawn_beside_the_number_never_over_it(rendered):
    root, layouts = rendered
    fonts = street.find_fonts()[:4]
    drawn = 0
    for i, r in enumerate(layouts["train"] + layouts["test"]):
        plain = street.render(r, fonts, seed=i, style=_quiet(words=0.0)).astype(int)
        worded = street.render(r, fonts, seed=i, style=_quiet(words=1.0)).astype(int)
        changed = np.abs(plain - worded).max(2) > 0
        x0, y0, x1, y1 = svhn.union_box(r.boxes)
        ys, xs = np.nonzero(changed)
        inside = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
        assert not inside.any()  # the number's pixels are the same with or without the word
        drawn += bool(len(xs))
    assert drawn >= 10  # most images had room for a word


def test_styled_digits_stay_in_their_boxes(rendered):
    """With relief, shadows, plates and faded ink, every digit box still holds its digit: its
    pixels differ from the same image rendered with the digit's box empty of ink."""
    root, layouts = rendered
    fonts = street.find_fonts()[:4]
    style = _quiet(relief=1.0, shadow=1.0, contrast=(0.6, 1.0))
    inked = 0
    boxes = 0
    for i, r in enumerate(layouts["train"][:30]):
        image = street.render(r, fonts, seed=i, style=style).astype(np.float32)
        for _, left, top, bw, bh in r.boxes:
            x0, y0 = max(0, int(left)), max(0, int(top))
            patch = image[y0 : int(top + bh), x0 : int(left + bw)]
            if patch.size:
                boxes += 1
                inked += patch.std() > 8
    assert inked >= 0.9 * boxes


def test_street_command_takes_style_knobs_and_refuses_a_read_only_folder(
    tmp_path, capsys, monkeypatch
):
    from digitrec.cli import data as cli

    out = tmp_path / "street"
    args = [
        "street",
        "--random",
        "6",
        "--splits",
        "train",
        "--workers",
        "1",
        "--out",
        str(out),
        "--data-dir",
        str(tmp_path),
    ]
    assert cli.main([*args, "--set", "words=1", "--set", "palette=random"]) == 0
    marker = (out / svhn.RENDERED_MARKER).read_text()
    assert "words=1.0" in marker and "palette='random'" in marker
    assert len(svhn.read_digit_struct(out / "train" / "digitStruct.mat")) == 6
    assert cli.main([*args, "--set", "glitter=1"]) == 1
    assert "--set 'glitter=1': expected KEY=VALUE" in capsys.readouterr().err
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if str(p) == str(out) else real_access(p, mode)
    )
    assert cli.main(args) == 1
    assert f"{out}: read-only; pass --out DIR" in capsys.readouterr().err


def test_real_fine_tune_experiments_run_on_real_svhn(svhn_shared, tmp_path, monkeypatch):
    """experiment=photo_reader_real and localizer_real on $DIGITREC_DATA_DIR/svhn/real (their
    default root), small networks, a few steps each; the second starts from the first's kind of
    checkpoint with init_from= (here: its own run's)."""
    from mlflow import MlflowClient

    from digitrec.training.train import train

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    common = [
        f"paths.data_dir={svhn_shared.parent}",
        f"tracking.uri=sqlite:///{tmp_path}/m.db",
        f"tracking.artifact_root={tmp_path}/art",
        "+trainer.max_steps=2",
        "trainer.max_epochs=1",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]
    reader = [
        "experiment=photo_reader_real",
        "model.widths=[8,8,16,16,16]",
        "model.context_size=16",
        "data.eval_batch_size=128",
    ]
    metrics = train(compose_cfg(common + reader, tmp_path / "a"))
    assert 0 <= metrics["test/sequence_accuracy"] <= 1
    (first,) = (tmp_path / "a" / "output" / "checkpoints").glob("last.ckpt")
    train(compose_cfg(common + reader + [f"init_from={first}"], tmp_path / "b"))
    localizer = [
        "experiment=localizer_real",
        "model.widths=[8,8,16,16,16]",
        "model.fc=32",
        "data.eval_batch_size=128",
    ]
    metrics = train(compose_cfg(common + localizer, tmp_path / "c"))
    assert 0 <= metrics["test/mean_iou"] <= 1
    client = MlflowClient(f"sqlite:///{tmp_path}/m.db")
    runs = client.search_runs([client.get_experiment_by_name("photo_reader").experiment_id])
    assert len(runs) == 2 and "synthetic_data" not in runs[0].data.tags
    assert any(r.data.tags.get("init_from") == str(first) for r in runs)
    assert not (svhn_shared / "real" / "cache").exists()
