"""The trained models in the box: what `digitrec-predict`, `digitrec-serve`, `make demo` and the
MLflow pyfunc use when no model is given. Each is a trimmed checkpoint (weights, hyperparameters,
the `digitrec` entry saying its task and preprocessing; no optimizer state), its floating-point
weights stored as float16 where that changes no measured figure, beside its model card
(`<name>.md`: the command that made it, the data, the commit, the metrics, the licences).

`make train-photo-reader` remakes the detector; `pack(checkpoint, name)` writes one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from digitrec import checkpoints
from digitrec.io import atomic_path

HERE = Path(__file__).resolve().parent
MODELS = {
    "detector": "the photo reader: a digit detector over the whole photo (experiment=detector)",
    "mnist": "the draw mode's reader of handwritten MNIST numbers (make train)",
}


def path(name: str) -> Path:
    """The shipped checkpoint `name` (one of MODELS); FileNotFoundError (one line) when absent."""
    if name not in MODELS:
        raise ValueError(f"pretrained model {name!r}: expected one of {', '.join(MODELS)}")
    p = HERE / f"{name}.ckpt"
    if not p.is_file():
        raise FileNotFoundError(
            f"{p}: the pretrained {name} model is not in this copy of digitrec; "
            "give a checkpoint, or remake it (make train-photo-reader)"
        )
    return p


def card(name: str) -> Path:
    return path(name).with_suffix(".md")


INFERENCE_KEYS = ("threshold", "answer_threshold", "overlap", "size")  # what `settings` may change


def pack(
    source: str | Path,
    name: str,
    half: bool = True,
    out_dir: Path = HERE,
    settings: dict | None = None,
) -> Path:
    """Write `source` (a Lightning checkpoint) trimmed as `<out_dir>/<name>.ckpt`: state dict
    (float16 when `half`), hyperparameters and the digitrec entry; written whole or not at all.
    `settings` change inference settings chosen after training (on validation data): the
    hyperparameters `threshold`, `answer_threshold`, `overlap`, and `size`, the letterbox size it
    reads at."""
    ckpt = checkpoints.load(source, needs=("state_dict", "hyper_parameters"))
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(INFERENCE_KEYS))
    if unknown:
        raise ValueError(f"--set {unknown[0]}: expected one of {', '.join(INFERENCE_KEYS)}")
    state = {
        k: (v.half() if half and v.is_floating_point() else v)
        for k, v in ckpt.state["state_dict"].items()
    }
    hparams = dict(ckpt.state["hyper_parameters"])
    for key in ("threshold", "answer_threshold", "overlap"):
        if key in settings:
            hparams[key] = float(settings[key])
    keep = {
        "state_dict": state,
        "hyper_parameters": hparams,
        "global_step": ckpt.state.get("global_step", 0),
        "pytorch-lightning_version": ckpt.state.get("pytorch-lightning_version", ""),
    }
    if checkpoints.META_KEY in ckpt.state:
        keep[checkpoints.META_KEY] = dict(ckpt.state[checkpoints.META_KEY])
    if "size" in settings:
        meta = keep.setdefault(checkpoints.META_KEY, {"format": 1, "task": ckpt.task})
        meta["preprocessing"] = {**(meta.get("preprocessing") or {}), "size": int(settings["size"])}
    out = Path(out_dir) / f"{name}.ckpt"
    with atomic_path(out) as tmp:
        torch.save(keep, tmp)
    return out
