"""`make demo` (`digitrec-demo`): the live page with whatever models this project has.

    make demo                                     # finds the models; trains the quick one if none
    make demo MNIST_READER=best.ckpt READER=detector.ckpt
    make demo READER=reader.ckpt LOCALIZER=localizer.ckpt   # the older two-stage reader

The draw mode needs a reader of MNIST numbers; upload and camera need the photo reader (a
detector, or a reader of SVHN crops with a localizer). Each is, first found first: given
(--mnist-reader; --reader [--localizer]), registered in the tracking store
(models:/digitrec-mnist@champion, models:/digitrec-photo@champion), for the draw mode the best
checkpoint of the latest finished mnist_seq run, for the photo the detector `make
train-photo-reader` writes (outputs/photo_reader/detector/checkpoints/best.ckpt), and last the
pretrained models in the box (digitrec/pretrained: `digitrec-pretrained list`). With no reader of
MNIST numbers anywhere, --train-if-missing runs `digitrec-train` (what `make train` runs, minutes
on a CPU) first. The page shows a mode without a model disabled, with the command
that trains it; the terminal says the same.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from digitrec.cli._common import Parser, port
from digitrec.paths import default_tracking_uri
from digitrec.serving.app import ENABLE
from digitrec.serving.demo import (
    find_models,
)


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="digitrec-demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--mnist-reader", default=os.environ.get("MNIST_READER") or None)
    p.add_argument("--reader", default=os.environ.get("READER") or None)
    p.add_argument("--localizer", default=os.environ.get("LOCALIZER") or None)
    p.add_argument(
        "--uri",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        help="tracking store (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)",
    )
    p.add_argument(
        "--train-if-missing",
        action="store_true",
        help="no reader of MNIST numbers anywhere: run digitrec-train first",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port, default=8000, help="0: any free port")
    p.add_argument(
        "--tls",
        nargs=2,
        metavar=("CERT.pem", "KEY.pem"),
        default=None,
        help="HTTPS, for the camera on another machine (docs/how-to/serving.md)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def client():
        uri = args.uri or default_tracking_uri()
        if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).is_file():
            return None  # no store yet: nothing trained here
        from digitrec.tracking import open_store

        return open_store(uri)

    found = find_models(client(), args.mnist_reader, args.reader, args.localizer)
    if found["draw"] is None and args.train_if_missing:
        print(
            "digitrec-demo: no reader of MNIST numbers yet: training one (digitrec-train, "
            "what make train runs) ...",
            flush=True,
        )
        code = subprocess.run([sys.executable, "-m", "digitrec.cli.train"]).returncode
        if code:
            print(f"digitrec-demo: digitrec-train exited {code}", file=sys.stderr)
            return code
        found = find_models(client(), None, args.reader, args.localizer)
    if found["draw"] is None and found["photo"] is None:
        print(
            f"digitrec-demo: no model yet; the draw mode needs {ENABLE['draw'].split(' (')[0]}, "
            f"upload and camera {ENABLE['photo'].split(' (')[0]} (or make demo, which trains "
            "the first)",
            file=sys.stderr,
        )
        return 2
    command = [
        "--host",
        args.host,
        "--port",
        str(args.port),
        *(["--tls", *args.tls] if args.tls else []),
    ]
    for mode, labels in (("photo", "upload and camera"), ("draw", "draw")):
        if found[mode] is None:
            print(f"digitrec-demo: {labels}: no model; {ENABLE[mode]}")
            continue
        model, where = found[mode]
        if mode == "photo":
            command = [model[0], *(["--localizer", model[1]] if model[1] else []), *command]
            model = " + ".join(m for m in model if m)
        else:
            command += ["--drawing-reader", model]
        print(f"digitrec-demo: {labels}: {model} (from {where})")
    from digitrec.cli import serve

    return serve.main(command)


if __name__ == "__main__":
    sys.exit(main())
