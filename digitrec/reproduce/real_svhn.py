"""Every SVHN model of the reproduction read on real SVHN test images (the report's real column).

The images are `<data dir>/svhn/real/test` (real SVHN format-1 test images with their official
labels; see ../shared/data/README.md), read as the paper evaluates: the ground-truth union box
+30%, 64x64, the center 54x54 window (the run's own data.image_size, data.expand, data.crop).
Each run's best checkpoint is read once; the figures go onto the run in MLflow as
`real_svhn/<metric>` (sequence, per-digit, length accuracy, coverage at 98%, n) with the answers'
confidences as the artifact `real_svhn_confidence.npz`, so a resumed reproduction skips runs
already measured. Nothing here trains or chooses anything: the real test images only measure.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import torch
from mlflow.tracking import MlflowClient

from digitrec import decode
from digitrec.data.download import atomic_write_bytes
from digitrec.evaluate import predict, score, svhn_crops

PREFIX = "real_svhn"
CONFIDENCE = "real_svhn_confidence.npz"


def real_test_root(data_dir: Path) -> Path | None:
    """`<data_dir>/svhn/real` when its test split has images, else None."""
    root = data_dir / "svhn" / "real"
    return root if any((root / "test").glob("*.png")) else None


def _checkpoint(client: MlflowClient, run, tmp: str) -> Path:
    local = run.data.tags.get("best_checkpoint")
    if local and Path(local).is_file():
        return Path(local)
    return Path(client.download_artifacts(run.info.run_id, "checkpoints/best.ckpt", tmp))


def measure(client: MlflowClient, run, root: Path, threads: int | None = None) -> dict:
    """Read `root`'s test crops with the run's best checkpoint; log and return the figures."""
    from digitrec.reading.pipeline import load_module

    if threads:
        torch.set_num_threads(threads)
    params = run.data.params
    with tempfile.TemporaryDirectory() as tmp:
        model = load_module(_checkpoint(client, run, tmp))
    seqs = svhn_crops(root, "test", image_size=int(params.get("data.image_size", 64)),
                      expand=float(params.get("data.expand", 0.3)),
                      crop=int(params.get("data.crop", 54)), max_len=model.hparams.max_len)  # fmt: skip
    values = score(model, seqs)
    decoded, _ = predict(model, seqs.images)
    correct = decode.sequence_correct(decoded, torch.from_numpy(seqs.length),
                                      torch.from_numpy(seqs.digits))  # fmt: skip
    run_id = run.info.run_id
    for key in ("sequence_accuracy", "digit_accuracy", "length_accuracy", "coverage_at_98", "n"):
        client.log_metric(run_id, f"{PREFIX}/{key}", float(values[key]))
    client.set_tag(run_id, f"{PREFIX}.images", str(root / "test"))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, confidence=decoded.confidence.numpy(), correct=correct.numpy())
    with tempfile.TemporaryDirectory() as tmp:
        atomic_write_bytes(Path(tmp) / CONFIDENCE, buffer.getvalue())
        client.log_artifact(run_id, str(Path(tmp) / CONFIDENCE))
    return {k: float(v) for k, v in values.items()}


def measure_all(client: MlflowClient, runs: list, root: Path | None) -> int:
    """Measure every run without real-SVHN figures yet; returns how many were measured."""
    if root is None:
        return 0
    todo = [r for r in runs if f"{PREFIX}/sequence_accuracy" not in r.data.metrics]
    for i, run in enumerate(todo, 1):
        v = measure(client, run, root)
        print(f"real SVHN test ({int(v['n'])} images) {i}/{len(todo)}: run {run.info.run_id} "
              f"reads {v['sequence_accuracy']:.2%}", flush=True)  # fmt: skip
    return len(todo)
