"""A task's network as TorchScript and ONNX, checked against PyTorch (digitrec-export).

Each graph takes uint8 images (B, C, H, W), the model's input shape (any batch size), and does its own normalization
(the reader's mean subtraction included): the reader returns (length_logits (B, max_len + 2),
digit_logits (B, max_len, 10)), decoded as digitrec.tasks.decode.joint_decode does; the localizer
returns boxes (B, 4), normalized x0, y0, x1, y1. `export.json` says which file is which, their
input sizes and each model's preprocessing recipe, read from its checkpoint. Each export is checked
against PyTorch on random images before it is written (max abs difference printed).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from digitrec.io import atomic_write_bytes
from digitrec.tasks import to_input

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


OUTPUTS = {"reader": ["length_logits", "digit_logits"], "localizer": ["boxes"]}


def export(module, name: str, out: Path, formats: list[str]) -> dict:
    """Write `module` as out/<name>.pt and/or .onnx; its export.json entry (input, outputs,
    preprocessing, files and their largest difference from PyTorch)."""
    names = OUTPUTS.get(module.task, ["output"])
    entry = {
        "task": module.task,
        "input": ["batch", *module.net.input_shape],
        "dtype": "uint8",
        "outputs": names,
        "preprocessing": dict(module.preprocessing),
    }
    for fmt in formats:
        data = to_torchscript(module) if fmt == "torchscript" else to_onnx(module, names)
        runner = run_torchscript if fmt == "torchscript" else run_onnx
        diff = max_difference(module, data, runner)
        if diff > TOLERANCE:
            raise RuntimeError(f"{name} {fmt}: outputs differ from PyTorch by {diff:.2e}")
        path = out / f"{name}.{'pt' if fmt == 'torchscript' else 'onnx'}"
        atomic_write_bytes(path, data)
        entry[fmt] = {"file": path.name, "max_abs_difference": diff}
        print(f"{path.name}: {len(data) / 1e6:.1f} MB, max |difference| from PyTorch {diff:.1e}")
    return entry
