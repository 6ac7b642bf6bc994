"""The live page's models found: given, registered, left by make train-photo-reader, or the latest
finished runs (digitrec-demo: digitrec.cli.demo)."""

from __future__ import annotations

from pathlib import Path

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


def _pretrained(name: str) -> str | None:
    from digitrec import pretrained

    try:
        return str(pretrained.path(name))
    except FileNotFoundError:
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
    elif (own := PHOTO_DIR / "detector" / "checkpoints" / "best.ckpt").is_file():
        found["photo"] = ((str(own), None), "make train-photo-reader")
    elif (shipped := _pretrained("detector")) is not None:
        found["photo"] = ((shipped, None), "the pretrained models (digitrec/pretrained)")
    if found["draw"] is None and (shipped := _pretrained("mnist")) is not None:
        found["draw"] = (shipped, "the pretrained models (digitrec/pretrained)")
    return found
