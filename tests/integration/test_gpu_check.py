"""experiments/gpu: the GPU check's dry run on this CPU, with a tiny budget: pack what a device
run carries, render a tiny stand-in from SVHN's real layouts, train the paper's network, report."""

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "experiments" / "gpu" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_dry_run_on_cpu(tmp_path, real_data_dir):
    wheels, carry = tmp_path / "wheels", tmp_path / "carry"
    wheels.mkdir()
    pack = _script("pack")
    for name in (*pack.WHEELS, "mlflow_skinny", "optuna"):  # stand-ins for the device wheels
        (wheels / f"{name}-1.0-py3-none-any.whl").write_bytes(b"PK")
    assert (
        pack.main(
            [
                "--wheels",
                str(wheels),
                "--whl-out",
                str(carry / ".whl"),
                "--data-dir",
                str(real_data_dir),
                "--out",
                str(carry / ".gpu"),
            ]
        )
        == 0
    )
    carried = sorted(w.name.split("-")[0] for w in (carry / ".whl").glob("*.whl"))
    assert carried == sorted(pack.WHEELS)  # what check.py imports, not mlflow or optuna
    labels = carry / ".gpu" / "labels"
    assert sorted(p.name for p in labels.iterdir()) == ["test.json.gz", "train.json.gz"]

    out, street = tmp_path / "out", tmp_path / "street"
    code = _script("check").main(
        [
            "--data",
            str(street),
            "--labels",
            str(labels),
            "--train-layouts",
            "40",
            "--test-layouts",
            "24",
            "--device",
            "cpu",
            "--minutes",
            "0.01",
            "--batch",
            "4",
            "--workers",
            "1",
            "--warmup",
            "1",
            "--loader-seconds",
            "0.5",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert (street / "RENDERED.md").is_file() and len(list((street / "train").glob("*.png"))) == 40
    r = json.loads((out / "gpu_check.json").read_text())
    assert r["synthetic"] is True and r["train_images"] == 40 and r["test_n"] == 24
    assert r["precision"] == "bf16" and r["channels_last"] is True
    assert r["parameters"] > 20_000_000  # the paper's network, not a small one
    assert r["steps"] > 2 and r["train_images_per_second"] > 0
    assert r["loader_images_per_second"] > 0
    assert 0 <= r["data_wait_share"] <= 1 and 0 <= r["copy_share"] <= 1
    assert 0 <= r["test_sequence_accuracy"] <= 1
    assert r["gpu_utilization_mean"] is None  # no GPU here: said, not made up
    text = (out / "gpu_check.md").read_text()
    assert "| training images/s" in text and "(SYNTHETIC)" in text and "n=24" in text
