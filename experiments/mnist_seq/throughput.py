"""Training throughput beside the machine's compute limit (run it on an otherwise idle machine).

    python experiments/mnist_seq/throughput.py [--threads 2] [overrides of conf/model/cnn.yaml ...]

1. The compute limit: the best of repeated fp32 matrix products (2048 x 2048, torch.mm) on
   `--threads` threads, in multiply-adds per second — what these cores reach on the most
   favourable kernel there is.
2. The default model's training step (forward, backward, AdamW; batch 128 of 28x112 numbers):
   median images/s, and the multiply-adds it does per second (3 x the forward's per image: the
   backward costs about twice the forward).
3. Their ratio: the share of the compute limit a training step uses, and the numbers/s the limit
   would allow at that model's cost.
4. With --bf16: the same step under torch.autocast("cpu", bfloat16) (trainer.precision=bf16-mixed
   does this), and the CPU flags that decide whether it can be fast (avx512_bf16, amx_bf16).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from digitrec.cli.train import CONF_DIR as CONFIG_DIR
from digitrec.tasks import DigitReader


def gemm_macs_per_s(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return n**3 / best


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument(
        "--bf16", action="store_true", help="also time the step under bf16 autocast"
    )
    parser.add_argument("overrides", nargs="*", help="e.g. model.widths=[40,40,80,80,160]")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=args.overrides)
    net = {
        k: v
        for k, v in OmegaConf.to_container(cfg.model, resolve=False).items()
        if k not in ("_target_", "in_channels", "height", "width", "max_len")
    }
    reader = DigitReader(**net, in_channels=1, height=28, width=112, max_len=5)
    opt = torch.optim.AdamW(reader.parameters(), 3e-3)
    B = args.batch
    x = torch.randint(0, 256, (B, 1, 28, 112), dtype=torch.uint8)
    length, digits = torch.randint(1, 6, (B,)), torch.randint(0, 10, (B, 5))

    def step(bf16: bool = False):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            length_logits, digit_logits = reader(x, teacher=digits)
        loss = reader.loss(length_logits.float(), digit_logits.float(), length, digits)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(), step()
    median = statistics.median(_timed(step) for _ in range(args.steps))
    limit = gemm_macs_per_s()
    macs = reader.net.cost()["macs_per_image"]
    rate = B / median
    print(
        f"| threads | GEMM limit (GMAC/s) | model MMACs/image (fwd) | training step, batch {B} "
        "| numbers/s | GMAC/s in training (3 x fwd) | share of the limit | numbers/s at the limit |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.threads} | {limit / 1e9:.1f} | {macs / 1e6:.1f} | {median * 1e3:.0f} ms | "
        f"{rate:.0f} | {3 * macs * rate / 1e9:.1f} | {3 * macs * rate / limit:.0%} | "
        f"{limit / (3 * macs):.0f} |"
    )
    if args.bf16:
        step(True), step(True)
        bf16 = statistics.median(_timed(lambda: step(True)) for _ in range(max(3, args.steps // 3)))
        flags = set(open("/proc/cpuinfo").read().split()) if sys.platform == "linux" else set()
        have = sorted(f for f in flags if "bf16" in f or f.startswith(("avx512", "amx"))) or [
            "none"
        ]
        print(
            f"\nbf16 autocast step: {bf16 * 1e3:.0f} ms ({median / bf16:.2f}x the fp32 step's "
            f"speed); CPU flags for it: {', '.join(have)}"
        )


if __name__ == "__main__":
    main()
