"""The GPU check: the paper's network on one GPU at bf16, channels-last, with data workers.

    python experiments/gpu/check.py --data .gpu/street --labels .gpu/labels --minutes 5   # device
    python experiments/gpu/check.py --data DIR --labels L --train-layouts 40 --test-layouts 24 \
        --device cpu --minutes 0.01 --batch 4 --workers 1                                # dry run

It renders the SYNTHETIC stand-in into --data when --data has no caches yet (`digitrec-data
street` with SVHN's real layouts from --labels, every core), then trains `goodfellow`
(conf/model/goodfellow.yaml: the paper's 8 layers, maxout, subtractive normalization, locally
connected layer, 2 x 3,072 units, separate heads; no batch norm) with the paper's optimizer (SGD,
momentum 0.9, weight decay 5e-4) on digitrec's data path (SVHNDataModule's stream: cached 64x64
union-box crops, random 54x54 windows, the svhn augmentation, in `--workers` DataLoader processes
with pinned memory) for `--minutes`, and reports:
- images/s of training (steps after `--warmup`), and of the data loader alone;
- data wait: the share of the training time spent in the loader's next() (near 0: the loader is
  not the bottleneck), and the share spent copying batches to the GPU;
- GPU utilisation (nvidia-smi every second, the timed steps only) and peak memory;
- sequence accuracy on the rendered test split after those minutes (center crops, n stated).
The figures go to OUT/gpu_check.json and OUT/gpu_check.md. Nothing is downloaded. Plain PyTorch
around digitrec's own model, loss and data: no Hydra app or MLflow at run time; it imports torch,
pytorch_lightning, numpy, h5py, opencv, Pillow and matplotlib (the renderer's fonts), tqdm,
hydra (instantiate), omegaconf and albumentations (with pydantic) — on the H200 image all there
but those three, which experiments/gpu/pack.py copies as wheels.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from hydra.utils import instantiate  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from digitrec.data.street import street_command  # noqa: E402
from digitrec.datamodules.svhn import SVHNDataModule  # noqa: E402
from digitrec.tasks import DigitReader, decode  # noqa: E402


class GPUSampler(threading.Thread):
    """nvidia-smi's utilisation.gpu every `interval` seconds while running, with the time of each
    sample (none without nvidia-smi)."""

    def __init__(self, interval: float = 1.0):
        super().__init__(daemon=True)
        self.interval, self.samples, self.stop = interval, [], threading.Event()
        self.smi = shutil.which("nvidia-smi")

    def run(self) -> None:
        while self.smi and not self.stop.wait(self.interval):
            try:
                out = subprocess.run(
                    [
                        self.smi,
                        "--query-gpu=utilization.gpu",
                        "--format=csv,noheader,nounits",
                        "-i",
                        "0",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=5,
                )
                self.samples.append((time.perf_counter(), float(out.stdout.split()[0])))
            except (subprocess.SubprocessError, ValueError, IndexError):
                pass


def render(root: Path, labels: Path | None, train: int, test: int, workers: int) -> None:
    """The stand-in into `root` (SVHN format 1), unless it has its caches already."""
    if any((root / "cache").glob("test-*.h5")) or (root / "test" / "digitStruct.mat").is_file():
        return
    for split, n in (("train", train), ("test", test)):
        cmd = street_command(root, split, labels, n, workers=workers)
        start = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=REPO)
        print(f"rendered the {split} split in {time.perf_counter() - start:.0f} s", flush=True)


def model_config() -> dict:
    """The paper's network as conf/model/goodfellow.yaml gives it, for 54x54 RGB crops."""
    cfg = OmegaConf.load(REPO / "conf" / "model" / "goodfellow.yaml")
    cfg = OmegaConf.to_container(cfg, resolve=False)
    cfg.pop("_target_")
    cfg.update(in_channels=3, height=54, width=54, max_len=5, mean_subtract=True)
    return cfg


def augmentation():
    """conf/augmentation/svhn.yaml, as digitrec-train builds it."""
    return instantiate(OmegaConf.load(REPO / "conf" / "augmentation" / "svhn.yaml"))


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def loader_rate(loader, seconds: float) -> float:
    """Images/s the training loader alone delivers (workers started, no model)."""
    n, start, it = 0, None, iter(loader)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        if start is None:  # the first batch pays the workers' start-up
            start = time.perf_counter()
            continue
        n += len(batch["length"])
        if time.perf_counter() - start >= seconds:
            return n / (time.perf_counter() - start)


@torch.no_grad()
def test_accuracy(model, dm, device, dtype) -> dict:
    model.eval()
    s = dm.test_set
    correct = []
    for i in range(0, len(s), 1024):
        x = torch.from_numpy(np.ascontiguousarray(s.images[i : i + 1024])).permute(0, 3, 1, 2)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            length_logits, digit_logits = model(x.to(device))
        d = decode.joint_decode(length_logits.float(), digit_logits.float())
        correct.append(
            decode.sequence_correct(
                d,
                torch.from_numpy(s.length[i : i + 1024]).to(device),
                torch.from_numpy(s.digits[i : i + 1024]).to(device),
            ).cpu()
        )
    model.train()
    c = torch.cat(correct).float()
    return {"sequence_accuracy": c.mean().item(), "n": len(c)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help="an SVHN format-1 root; the stand-in is rendered there when it is empty",
    )
    p.add_argument(
        "--labels",
        type=Path,
        help="SVHN's layouts (train.json.gz, test.json.gz); without them random layouts",
    )
    p.add_argument("--train-layouts", type=int, default=0, help="0: all 33,402")
    p.add_argument("--test-layouts", type=int, default=0, help="0: all 13,068")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_check")))
    p.add_argument("--minutes", type=float, default=5.0, help="training time")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--lr", type=float, default=0.05, help="SGD rate (the paper gives none)")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--warmup", type=int, default=20, help="steps left out of images/s")
    p.add_argument("--loader-seconds", type=float, default=10.0)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.precision == "bf16" else None
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    cores = os.cpu_count() or 2
    start = time.perf_counter()
    render(args.data, args.labels, args.train_layouts, args.test_layouts, max(1, cores - 1))
    dm = SVHNDataModule(
        root=str(args.data),
        val_size=0,
        batch_size=args.batch,
        eval_batch_size=1024,
        num_workers=args.workers,
        augmentation=augmentation(),
        download=False,
        cache_workers=max(1, cores - 1),
    )
    dm.prepare_data()
    dm.setup("fit")
    data_seconds = time.perf_counter() - start
    loader = DataLoader(
        dm.train_set,
        batch_size=None,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if args.workers else None,
    )
    n_train = len(dm.train_set.data["length"])
    print(
        f"data: {args.data} ({'rendered stand-in, SYNTHETIC' if dm.rendered else 'SVHN'}): "
        f"{n_train} training, {len(dm.test_set)} test images; {args.workers} loader workers",
        flush=True,
    )
    loader_ips = loader_rate(loader, args.loader_seconds)
    print(f"loader alone: {loader_ips:,.0f} images/s", flush=True)

    model = DigitReader(**model_config()).to(device)
    net = model.net.to(memory_format=torch.channels_last)
    cost = net.cost()
    step_fn = torch.compile(model) if args.compile else model
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    budget = args.minutes * 60
    sampler = GPUSampler()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        sampler.start()
    steps = images = 0
    wait = copy = measured = 0.0
    losses = []
    start = time.perf_counter()
    t_measure = start if args.warmup == 0 else None
    it = iter(loader)
    while steps <= args.warmup + 1 or time.perf_counter() - start < budget:  # 2 timed, at least
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:  # an epoch of the stream ends: the persistent workers go on
            it = iter(loader)
            batch = next(it)
        t1 = time.perf_counter()
        batch = to_device(batch, device)
        t2 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            length_logits, digit_logits = step_fn(batch["image"], teacher=batch["digits"])
        loss = model.loss(
            length_logits.float(), digit_logits.float(), batch["length"], batch["digits"]
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
        if t_measure is not None:
            images += len(batch["length"])
            wait += t1 - t0
            copy += t2 - t1
        if steps % 50 == 0 or steps == args.warmup:
            losses.append((steps, loss.item()))  # syncs now and then
        if steps == args.warmup and t_measure is None:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_measure = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.synchronize()
    sampler.stop.set()
    measured = time.perf_counter() - t_measure
    train_ips = images / measured if measured else float("nan")
    acc = test_accuracy(model, dm, device, dtype)
    util = [u for t, u in sampler.samples if t >= t_measure]  # the timed steps only
    result = {
        "device": torch.cuda.get_device_name()
        if device.type == "cuda"
        else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cpu_cores": os.cpu_count(),
        "data": str(args.data),
        "synthetic": bool(dm.rendered),
        "train_images": n_train,
        "model": "goodfellow (the paper's network, no batch norm)",
        "parameters": cost["parameters"],
        "macs_per_image": cost["macs_per_image"],
        "precision": args.precision,
        "channels_last": True,
        "compile": args.compile,
        "batch": args.batch,
        "lr": args.lr,
        "workers": args.workers,
        "minutes": args.minutes,
        "steps": steps,
        "epochs": steps * args.batch / max(1, n_train),
        "train_images_per_second": train_ips,
        "loader_images_per_second": loader_ips,
        "data_wait_share": wait / measured if measured else float("nan"),
        "copy_share": copy / measured if measured else float("nan"),
        "data_seconds": data_seconds,
        "gpu_utilization_mean": float(np.mean(util)) if util else None,
        "gpu_utilization_samples": len(util),
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30
        if device.type == "cuda"
        else None,
        "loss": losses,
        "test_sequence_accuracy": acc["sequence_accuracy"],
        "test_n": acc["n"],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(result, indent=1))
    util_text = (
        f"{result['gpu_utilization_mean']:.0f}% (mean of {len(util)} samples)"
        if util
        else "n/a (no nvidia-smi)"
    )
    lines = [
        f"# GPU check: {result['device']}",
        "",
        f"`python experiments/gpu/check.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        "| figure | value |",
        "|---|---|",
        f"| model | {result['model']}: {cost['parameters']:,} parameters, "
        f"{cost['macs_per_image'] / 1e6:,.0f} M multiply-adds per 54×54 image |",
        f"| precision, layout | {args.precision}, channels-last{', compiled' if args.compile else ''} |",
        f"| batch, SGD rate, loader workers | {args.batch}, {args.lr}, {args.workers} |",
        f"| training images/s (after {args.warmup} steps) | {train_ips:,.0f} |",
        f"| data loader alone, images/s | {loader_ips:,.0f} |",
        f"| time waiting for the loader, copying to the device | "
        f"{100 * result['data_wait_share']:.1f}%, {100 * result['copy_share']:.1f}% |",
        f"| rendering (if needed) and caching the stand-in | {data_seconds:.0f} s |",
        f"| GPU utilisation | {util_text} |",
        f"| steps, epochs in {args.minutes:g} min | {steps:,}, {result['epochs']:.1f} |",
        f"| test sequence accuracy{' (SYNTHETIC)' if dm.rendered else ''} | "
        f"{100 * acc['sequence_accuracy']:.2f}% (n={acc['n']:,}) |",
    ]
    (args.out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
