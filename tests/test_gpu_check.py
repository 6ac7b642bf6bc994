"""experiments/gpu: the GPU check's dry run on this CPU, with a tiny budget and packed data."""

import importlib.util
import json
from pathlib import Path

import h5py

REPO = Path(__file__).resolve().parent.parent


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "experiments" / "gpu" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_dry_run_on_cpu_with_packed_data(tmp_path, fake_data_dir):
    packed = tmp_path / "gpu" / "street"
    assert _script("pack").main(["--out", str(packed), "--train", "40", "--test", "24",
                                 "--data-dir", str(fake_data_dir)]) == 0  # fmt: skip
    caches = sorted(p.name.split("-")[0] for p in (packed / "cache").glob("*.h5"))
    assert caches == ["test", "train"] and (packed / "RENDERED.md").is_file()
    assert not list(packed.glob("train")) and not list(packed.glob("test"))  # caches only
    with h5py.File(next((packed / "cache").glob("train-*.h5"))) as f:
        assert f["images"].compression == "gzip" and f["images"].shape == (40, 64, 64, 3)

    out = tmp_path / "out"
    code = _script("check").main([
        "--data", str(packed), "--device", "cpu", "--minutes", "0.01", "--batch", "4",
        "--workers", "1", "--warmup", "1", "--loader-seconds", "0.5", "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    r = json.loads((out / "gpu_check.json").read_text())
    assert r["synthetic"] is True and r["train_images"] == 40 and r["test_n"] == 24
    assert r["precision"] == "bf16" and r["channels_last"] is True
    assert r["parameters"] > 20_000_000  # the paper's network, not a small one
    assert r["steps"] > 2 and r["train_images_per_second"] > 0
    assert r["loader_images_per_second"] > 0 and 0 <= r["data_wait_share"] <= 1
    assert 0 <= r["test_sequence_accuracy"] <= 1
    assert r["gpu_utilization_mean"] is None  # no GPU here: said, not made up
    text = (out / "gpu_check.md").read_text()
    assert "| training images/s" in text and "(SYNTHETIC)" in text and "n=24" in text
