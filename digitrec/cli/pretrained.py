"""`digitrec-pretrained`: the trained models in the box (digitrec/pretrained/).

    digitrec-pretrained list                       # each model, its file, size and model card
    digitrec-pretrained register [--uri URI]       # into MLflow: models:/digitrec-photo@champion,
                                                   #   models:/digitrec-mnist@champion
    digitrec-pretrained pack BEST.ckpt detector [--out-dir DIR]   # a checkpoint packed (float16,
                                                   #   trimmed) into the box, or into DIR

`register` logs each shipped model in a run of the MLflow experiment `pretrained` (the photo
detector as digitrec's pyfunc, the MNIST reader likewise) and registers it under the name
`make demo` looks for, its alias `champion` pointing at the new version; `make demo` and
`digitrec-serve models:/digitrec-photo@champion` then find it in the Model Registry.
"""

from __future__ import annotations

import argparse
import sys

from digitrec import pretrained
from digitrec.cli._common import Parser
from digitrec.tracking import add_uri_argument

REGISTERED = {"detector": "digitrec-photo", "mnist": "digitrec-mnist"}


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="digitrec-pretrained",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the shipped models, their files and cards")
    r = sub.add_parser("register", help="log and register the shipped models in MLflow")
    add_uri_argument(r)
    r.add_argument("--alias", default="champion", help="the alias set on each new version")
    k = sub.add_parser("pack", help="write a checkpoint into the box (trimmed, float16)")
    k.add_argument("checkpoint", help="a Lightning checkpoint (a run's best.ckpt)")
    k.add_argument("name", choices=list(pretrained.MODELS))
    k.add_argument("--float32", action="store_true", help="keep float32 weights")
    k.add_argument(
        "--out-dir", default=None, help="where to write NAME.ckpt (default: the box itself)"
    )
    k.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an inference setting chosen on validation data: threshold, answer_threshold, size",
    )
    return p


def _list() -> int:
    for name, what in pretrained.MODELS.items():
        try:
            path = pretrained.path(name)
        except FileNotFoundError:
            print(f"{name:<9} (not shipped) {what}")
            continue
        print(
            f"{name:<9} {path} ({path.stat().st_size / 1e6:.1f} MB): {what}; card {path.with_suffix('.md')}"
        )
    return 0


def _register(uri: str | None, alias: str) -> int:
    import mlflow

    from digitrec.paths import default_tracking_uri
    from digitrec.registry.pyfunc import log_reader_model
    from digitrec.tracking import register_model

    uri = uri or default_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("pretrained")
    client = mlflow.MlflowClient(uri)
    for name, registered in REGISTERED.items():
        try:
            path = pretrained.path(name)
        except FileNotFoundError as e:
            print(f"digitrec-pretrained: skipped {name}: {e}", file=sys.stderr)
            continue
        with mlflow.start_run(run_name=f"pretrained-{name}") as run:
            mlflow.set_tags({"pretrained": name, "model_card": str(path.with_suffix(".md"))})
            log_reader_model(path)
        version = register_model(client, client.get_run(run.info.run_id), registered, alias)
        print(f"registered {path.name} as models:/{registered}@{alias} (version {version.version})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "list":
            return _list()
        if args.command == "register":
            return _register(args.uri, args.alias)
        out_dir = args.out_dir or pretrained.HERE
        settings = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            try:
                settings[key] = float(value)
            except ValueError:
                raise ValueError(f"--set {item!r}: expected KEY=NUMBER") from None
            if not sep:
                raise ValueError(f"--set {item!r}: expected KEY=NUMBER")
        out = pretrained.pack(
            args.checkpoint, args.name, half=not args.float32, out_dir=out_dir, settings=settings
        )
        print(f"digitrec-pretrained: {args.checkpoint} → {out} ({out.stat().st_size / 1e6:.1f} MB)")
        return 0
    except (FileNotFoundError, ValueError) as e:
        print(f"digitrec-pretrained: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
