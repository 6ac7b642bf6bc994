"""`make demo` (`digitrec-demo`): the live page with whatever models this project has.

    make demo                                     # finds the models; trains the quick one if none
    make demo MNIST_READER=best.ckpt READER=reader.ckpt LOCALIZER=localizer.ckpt

The draw mode needs a reader of MNIST numbers; upload and camera need the photo reader (a reader
of SVHN crops and a localizer). Each is, first found first: given (--mnist-reader; --reader and
--localizer), registered in the tracking store (models:/digitrec-mnist@champion,
models:/digitrec-photo@champion), the files `make train-photo-reader` writes
(outputs/photo_reader/{reader,localizer}[_real]/checkpoints/best.ckpt), or the best checkpoint of
the latest finished run of its MLflow experiment (mnist_seq; photo_reader and localizer). With no
reader of MNIST numbers anywhere, --train-if-missing runs `digitrec-train` (what `make train`
runs, minutes on a CPU) first. The page shows a mode without a model disabled, with the command
that trains it; the terminal says the same.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from digitrec.reading.serve import ENABLE

PHOTO_DIR = Path("outputs/photo_reader")
REGISTERED = {"draw": "models:/digitrec-mnist@champion", "photo": "models:/digitrec-photo@champion"}


def _registered(client, uri: str) -> bool:
    name, alias = uri[len("models:/") :].split("@")
    try:
        client.get_model_version_by_alias(name, alias)
    except Exception:  # noqa: BLE001  (no such model or alias, or no registry)
        return False
    return True


def _latest_checkpoint(client, experiment: str) -> str | None:
    """The best checkpoint of the latest finished run of `experiment` that still exists."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs(
        [found.experiment_id],
        "attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=50,
    )
    for run in runs:
        path = run.data.tags.get("best_checkpoint")
        if path and Path(path).is_file():
            return path
    return None


def find_models(client, mnist_reader=None, reader=None, localizer=None) -> dict:
    """{"draw": reader of MNIST numbers or None, "photo": (reader, localizer) or None}, each a
    checkpoint path or a models:/ URI, and where it came from."""
    found = {"draw": None, "photo": None}
    if mnist_reader:
        found["draw"] = (mnist_reader, "given")
    elif client is not None and _registered(client, REGISTERED["draw"]):
        found["draw"] = (REGISTERED["draw"], "the Model Registry")
    elif client is not None and (path := _latest_checkpoint(client, "mnist_seq")):
        found["draw"] = (path, "the latest mnist_seq run")
    if reader:
        found["photo"] = ((reader, localizer), "given")
    elif client is not None and _registered(client, REGISTERED["photo"]):
        found["photo"] = ((REGISTERED["photo"], None), "the Model Registry")
    else:
        for suffix in ("_real", ""):
            pair = [
                PHOTO_DIR / f"{kind}{suffix}" / "checkpoints" / "best.ckpt"
                for kind in ("reader", "localizer")
            ]
            if all(p.is_file() for p in pair):
                found["photo"] = ((str(pair[0]), str(pair[1])), f"{PHOTO_DIR}")
                break
        else:
            if client is not None:
                pair = [_latest_checkpoint(client, e) for e in ("photo_reader", "localizer")]
                if all(pair):
                    found["photo"] = (tuple(pair), "the latest photo_reader and localizer runs")
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
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
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--tls",
        nargs=2,
        metavar=("CERT.pem", "KEY.pem"),
        default=None,
        help="HTTPS, for the camera on another machine (README 'Reading live')",
    )
    args = p.parse_args(argv)
    if args.reader and not args.localizer and not args.reader.startswith("models:/"):
        print("digitrec-demo: --reader needs --localizer (LOCALIZER=)", file=sys.stderr)
        return 2

    def client():
        uri = args.uri or "sqlite:///mlflow.db"
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
        code = subprocess.run([sys.executable, "-m", "digitrec.train"]).returncode
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
    from digitrec.reading import serve

    return serve.main(command)


if __name__ == "__main__":
    sys.exit(main())
