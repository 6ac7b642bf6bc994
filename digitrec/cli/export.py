"""`digitrec-export`: the reader (and localizer) as TorchScript and ONNX, for deployment.

digitrec-export READER.ckpt --localizer LOCALIZER.ckpt --out exported/

Each graph takes uint8 images (B, C, H, W), the model's input shape (any batch size), and does its own normalization
(the reader's mean subtraction included): the reader returns (length_logits (B, max_len + 2),
digit_logits (B, max_len, 10)), decoded as digitrec.tasks.decode.joint_decode does; the localizer
returns boxes (B, 4), normalized x0, y0, x1, y1. `export.json` says which file is which, their
input sizes and each model's preprocessing recipe as its checkpoint carries it (e.g. the reader's
crop: expand, image_size, crop). Each export is checked against PyTorch on random images before
it is written (max abs difference printed). Every model is loaded before anything is written, and
the files are written into a temporary folder beside --out and moved in together: a failure leaves
nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from digitrec.cli._common import cli_parser
from digitrec.inference.export import export
from digitrec.io import atomic_write_bytes
from digitrec.registry import resolve_reader
from digitrec.tasks import load_task


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
        reader, localizer = resolve_reader(args.checkpoint, args.localizer)  # or models:/...
        modules = {"reader": load_task(reader)}  # every model loaded before anything is written
        if localizer:
            modules["localizer"] = load_task(localizer, "--localizer")
        out.parent.mkdir(parents=True, exist_ok=True)
        # written into a temporary folder beside --out, moved in only when all of it exists
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        try:
            meta = {name: export(m, name, tmp, formats) for name, m in modules.items()}
            atomic_write_bytes(tmp / "export.json", json.dumps(meta, indent=2).encode())
            out.mkdir(exist_ok=True)
            names = sorted(f.name for f in tmp.iterdir())
            for name in names:
                os.replace(tmp / name, out / name)
            print(f"digitrec-export: {', '.join(names)} → {out}/")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except ImportError as e:
        print(f"digitrec-export: {e} (pip install 'digitrec[export]')", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"digitrec-export: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
