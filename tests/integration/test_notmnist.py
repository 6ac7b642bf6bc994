"""notMNIST: the archive converter (unreadable files skipped and counted), the idx sample, and
`data=notmnist_seq` trained end to end on the shared sample."""

import io
import logging
import tarfile
import urllib.error

import numpy as np
import pytest
from conftest import compose_cfg, make_glyphs, small_overrides
from helpers import unavailable

from digitrec.data import notmnist
from digitrec.data.download import DownloadError
from digitrec.training.train import train


def _png(image) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def _archive(path, n_per_letter=3, broken=("notMNIST_small/C/broken.png",)):
    path.parent.mkdir(parents=True, exist_ok=True)
    images, _ = make_glyphs(10 * n_per_letter, 0)
    with tarfile.open(path, "w:gz") as tar:

        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for i, image in enumerate(images):
            add(f"notMNIST_small/{'ABCDEFGHIJ'[i % 10]}/{i}.png", _png(image))
        for name in broken:
            add(name, b"\x89PNG not really")  # an unreadable file, as the real archive has
        add("notMNIST_small/README.txt", b"not a glyph")
    return images


def test_archive_is_converted_once_with_unreadable_files_counted(tmp_path, caplog):
    images = _archive(tmp_path / "notmnist" / notmnist.ARCHIVE)
    with caplog.at_level(logging.INFO, logger="digitrec.data.notmnist"):
        arrays = notmnist.ensure_notmnist(tmp_path, download=False)
    assert arrays["images"].shape == (30, 28, 28)
    assert np.array_equal(arrays["images"], images)  # PNG is lossless; tar order kept
    assert np.array_equal(arrays["labels"], np.arange(30) % 10)
    assert "30 letters read" in caplog.text and "1 unreadable files skipped" in caplog.text
    cache = tmp_path / "notmnist" / notmnist.CACHE
    assert cache.exists()
    (tmp_path / "notmnist" / notmnist.ARCHIVE).unlink()  # the cache alone is enough now
    again = notmnist.ensure_notmnist(tmp_path, download=False)
    assert np.array_equal(again["images"], arrays["images"])
    split = notmnist.load_notmnist(tmp_path, download=False)
    assert len(split["train_images"]) == 24 and len(split["test_images"]) == 6


def test_truncated_archive_and_offline_download_are_one_line_errors(tmp_path, monkeypatch):
    path = tmp_path / "notmnist" / notmnist.ARCHIVE
    _archive(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="notMNIST_small.tar.gz: unreadable or truncated"):
        notmnist.ensure_notmnist(tmp_path, download=False)
    assert not (tmp_path / "notmnist" / notmnist.CACHE).exists()  # nothing half-written

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(DownloadError, match="notMNIST is not in .* could not be fetched"):
        notmnist.ensure_notmnist(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="download is disabled"):
        notmnist.ensure_notmnist(tmp_path / "empty", download=False)


def _notmnist_dir(real_data_dir):
    if not (real_data_dir / "notmnist").is_dir():
        message = f"no notMNIST sample under {real_data_dir}/notmnist"
        unavailable(message)
    return real_data_dir


def test_shared_idx_sample_is_verified_and_split(real_data_dir):
    arrays = notmnist.load_notmnist(_notmnist_dir(real_data_dir))
    assert arrays["train_images"].shape == (8000, 28, 28) and len(arrays["test_labels"]) == 2000
    assert set(np.unique(arrays["train_labels"])) == set(range(10))


@pytest.mark.slow
def test_notmnist_sequences_train_end_to_end(tmp_path, real_data_dir):
    overrides = small_overrides(tmp_path, _notmnist_dir(real_data_dir)) + [
        "data=notmnist_seq",
        "data.verify=true",
        "data.val_glyphs=1000",
        "data.train_size=6400",
        "data.min_len=1",
        "data.max_len=2",
        "data.width=56",
        "data.length_probs=null",
        "data.train_length_probs=null",
        "data.val_size=500",
        "data.test_size=500",
        "model.depth=3",
        "model.widths=[16,32,32]",
        "model.context_size=32",
        "trainer.max_epochs=1",
    ]
    metrics = train(compose_cfg(overrides, tmp_path))
    # 200 steps of 32 on 1-2 letter numbers: far above chance (1/10 per letter, ~1/55 per number)
    assert metrics["test/digit_accuracy"] > 0.5
    assert metrics["test/sequence_accuracy"] > 0.3
