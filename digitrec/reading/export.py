"""`digitrec-export`: the reader (and localizer) as TorchScript and ONNX, for deployment.

digitrec-export READER.ckpt --localizer LOCALIZER.ckpt --out exported/

Each graph takes uint8 RGB images (B, 3, H, W) (any batch size) and does its own normalization
(the reader's mean subtraction included): the reader returns (length_logits (B, max_len + 2),
digit_logits (B, max_len, 10)), decoded as digitrec.decode.joint_decode does; the localizer
returns boxes (B, 4), normalized x0, y0, x1, y1. `export.json` says which file is which, their
input sizes and the preprocessing around them (crop margin, sizes). Each export is checked
against PyTorch on random images before it is written (max abs difference printed).
"""

from __future__ import annotations

import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from digitrec.data.download import atomic_write_bytes
from digitrec.module import to_input
from digitrec.reading.mlflow_model import resolve
from digitrec.reading.pipeline import cli_parser, load_module

TOLERANCE = 1e-4


class Graph(nn.Module):
    """A trained network with its input normalization: uint8 images in, raw outputs out."""

    def __init__(self, module):
        super().__init__()
        self.net = module.net
        self.mean_subtract = bool(getattr(module, "mean_subtract", False))

    def forward(self, images: torch.Tensor):
        return self.net(to_input(images, self.mean_subtract))


def example(module, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, *module.net.input_shape), dtype=torch.uint8, generator=g)


def _outputs(out) -> list[np.ndarray]:
    return [o.detach().numpy() for o in (out if isinstance(out, tuple | list) else (out,))]


def to_torchscript(module) -> bytes:
    graph = Graph(module).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(graph, (example(module),))
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    return buffer.getvalue()


def to_onnx(module, names: list[str]) -> bytes:
    graph = Graph(module).eval()
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notices
        torch.onnx.export(
            graph,
            (example(module),),
            buffer,
            input_names=["image"],
            output_names=names,
            dynamic_axes={"image": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    return buffer.getvalue()


def run_torchscript(data: bytes, images: torch.Tensor) -> list[np.ndarray]:
    model = torch.jit.load(io.BytesIO(data))
    with torch.no_grad():
        return _outputs(model(images))


def run_onnx(data: bytes, images: torch.Tensor) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {"image": images.numpy()})


def max_difference(module, data: bytes, runner, batch: int = 5) -> float:
    """Max abs difference of an exported graph's outputs from PyTorch's, on random images of a
    batch size other than the one traced with."""
    images = example(module, batch, seed=1)
    with torch.no_grad():
        ref = _outputs(Graph(module).eval()(images))
    got = runner(data, images)
    return max(float(np.abs(a - b).max()) for a, b in zip(ref, got, strict=True))


def export(module, name: str, out: Path, formats: list[str]) -> dict:
    names = ["boxes"] if name == "localizer" else ["length_logits", "digit_logits"]
    entry = {"input": ["batch", *module.net.input_shape], "dtype": "uint8", "outputs": names}
    for fmt in formats:
        data = to_torchscript(module) if fmt == "torchscript" else to_onnx(module, names)
        runner = run_torchscript if fmt == "torchscript" else run_onnx
        diff = max_difference(module, data, runner)
        if diff > TOLERANCE:
            raise RuntimeError(f"{name} {fmt}: outputs differ from PyTorch by {diff:.2e}")
        path = out / f"{name}.{'pt' if fmt == 'torchscript' else 'onnx'}"
        atomic_write_bytes(path, data)
        entry[fmt] = {"file": path.name, "max_abs_difference": diff}
        print(f"{path}: {len(data) / 1e6:.1f} MB, max |difference| from PyTorch {diff:.1e}")
    return entry


def main(argv: list[str] | None = None) -> int:
    p = cli_parser("digitrec-export", __doc__)
    p.add_argument("--out", default="exported", help="output folder (default exported/)")
    p.add_argument("--formats", default="torchscript,onnx", help="comma-separated")
    args = p.parse_args(argv)
    formats = [f for f in args.formats.split(",") if f]
    if unknown := set(formats) - {"torchscript", "onnx"}:
        p.error(f"--formats: unknown {sorted(unknown)}; expected torchscript, onnx")
    try:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        reader, bundled = resolve(args.checkpoint)  # a path, models:/... or runs:/...
        localizer = resolve(args.localizer)[0] if args.localizer else bundled
        meta = {
            "reader": export(load_module(reader), "reader", out, formats),
            "preprocessing": {
                "expand": 0.3,
                "image_size": 64,
                "crop": 54,
                "localizer": "whole image resized to its input (squashed)",
            },
        }
        if localizer:
            meta["localizer"] = export(load_module(localizer), "localizer", out, formats)
        atomic_write_bytes(out / "export.json", json.dumps(meta, indent=2).encode())
    except ImportError as e:
        print(f"digitrec-export: {e} (pip install 'digitrec[export]')", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"digitrec-export: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
