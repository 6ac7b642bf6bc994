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
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from digitrec.datamodules.svhn import ground_truth_crops
from digitrec.evaluation.scoring import predict
from digitrec.io import atomic_write_bytes
from digitrec.tasks import decode

PREFIX = "real_svhn"
CONFIDENCE = "real_svhn_confidence.npz"


def real_test_root(data_dir: Path) -> Path | None:
    """`<data_dir>/svhn/real` when its test split has images, else None."""
    root = data_dir / "svhn" / "real"
    return root if any((root / "test").glob("*.png")) else None


def _checkpoint(client: MlflowClient, run, tmp: str) -> Path:
    """The run's best checkpoint: its local file when still there, else its logged artifact."""
    local = run.data.tags.get("best_checkpoint")
    if local and Path(local).is_file():
        return Path(local)
    name = Path(local).name if local else "best.ckpt"
    return Path(client.download_artifacts(run.info.run_id, f"checkpoints/{name}", tmp))


def measure(client: MlflowClient, run, root: Path) -> dict:
    """Read `root`'s test crops with the run's best checkpoint; log and return the figures (the
    confidences first, then every metric at once: `real_svhn/n` marks a complete reading)."""
    from digitrec.tasks import load_task

    with tempfile.TemporaryDirectory() as tmp:
        model = load_task(_checkpoint(client, run, tmp))
    recipe = model.preprocessing  # the crop the reader was trained on, as its checkpoint says
    seqs = ground_truth_crops(
        root,
        "test",
        image_size=int(recipe["image_size"]),
        expand=float(recipe["expand"]),
        crop=int(recipe["crop"]),
        max_len=model.hparams.max_len,
    )
    decoded, logits = predict(model, seqs.images)
    length, digits = torch.from_numpy(seqs.length), torch.from_numpy(seqs.digits)
    values = decode.metrics(decoded, logits, length, digits)
    values["n"] = float(len(seqs))
    correct = decode.sequence_correct(decoded, length, digits)
    run_id = run.info.run_id
    buffer = io.BytesIO()
    np.savez_compressed(buffer, confidence=decoded.confidence.numpy(), correct=correct.numpy())
    with tempfile.TemporaryDirectory() as tmp:
        atomic_write_bytes(Path(tmp) / CONFIDENCE, buffer.getvalue())
        client.log_artifact(run_id, str(Path(tmp) / CONFIDENCE))
    client.set_tag(run_id, f"{PREFIX}.images", str(root / "test"))
    keys = ("sequence_accuracy", "digit_accuracy", "length_accuracy", "coverage_at_98", "n")
    now = int(time.time() * 1000)
    client.log_batch(
        run_id, metrics=[Metric(f"{PREFIX}/{k}", float(values[k]), now, 0) for k in keys]
    )
    return {k: float(values[k]) for k in keys}


def measure_all(client: MlflowClient, runs: list, root: Path | None) -> int:
    """Measure every run without a complete real-SVHN reading; returns how many were measured.
    A run that cannot be read (its checkpoint gone) is said and left without the figures."""
    if root is None:
        return 0
    todo = [r for r in runs if f"{PREFIX}/n" not in r.data.metrics]
    done = 0
    for i, run in enumerate(todo, 1):
        try:
            v = measure(client, run, root)
        except (OSError, ValueError, MlflowException) as e:
            print(
                f"real SVHN test {i}/{len(todo)}: run {run.info.run_id} not read: {e}",
                file=sys.stderr,
            )
            continue
        done += 1
        print(
            f"real SVHN test ({int(v['n'])} images) {i}/{len(todo)}: run {run.info.run_id} "
            f"reads {v['sequence_accuracy']:.2%}",
            flush=True,
        )
    return done
