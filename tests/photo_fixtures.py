"""Small photo-reading models and inputs shared by the reading, serving and browser tests:
a random-weight SVHN crop reader and localizer, the two-stage reader over them, a rendered
SVHN-format folder, random photos, and a POST to the page's /api/read."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from helpers import save_checkpoint

from digitrec.data import street
from digitrec.inference.pipeline import PhotoReader
from digitrec.tasks import BoxLocalizer, DigitReader

READER_NET = dict(
    in_channels=3,
    height=54,
    width=54,
    depth=3,
    widths=[8, 8, 16],
    fc=[32],
    context="gru",
    context_size=16,
)
LOCALIZER_NET = dict(in_channels=3, size=64, widths=[8, 8, 16, 16], blocks=1, fc=32)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("ckpt")
    reader = save_checkpoint(DigitReader(mean_subtract=True, **READER_NET), root / "reader.ckpt")
    localizer = save_checkpoint(BoxLocalizer(**LOCALIZER_NET), root / "localizer.ckpt")
    return reader, localizer


@pytest.fixture(scope="module")
def photo_reader(checkpoints):
    return PhotoReader.from_checkpoints(*checkpoints)


@pytest.fixture(scope="module")
def rendered_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("street")
    fonts = street.find_fonts()[:3]
    for split, n, seed in (("train", 40, 0), ("test", 12, 1)):
        street.render_split(
            street.random_layouts(n, seed=seed),
            root,
            split,
            seed=seed,
            workers=1,
            fonts=fonts,
            progress=False,
        )
    return root


def photo(h=480, w=640, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _post(url, body: bytes, content_type: str, query: str = "", timeout: float = 30):
    request = urllib.request.Request(
        f"{url}/api/read{query}", data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
