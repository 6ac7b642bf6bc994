"""experiments/photo_reader/peers.py: the peers' answer rule, the image sets, the table. The
peers themselves (RapidOCR, Tesseract) are not installed for tests: their outputs are given."""

from __future__ import annotations

import importlib.util
import json
import os

from conftest import REPO
from helpers import unavailable

spec = importlib.util.spec_from_file_location(
    "peers", REPO / "experiments" / "photo_reader" / "peers.py"
)
peers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peers)


def test_answer_rule_is_the_digits_of_the_most_confident_line():
    box = [[0, 0], [1, 0], [1, 1], [0, 1]]
    assert (
        peers.rapidocr_answer([(box, "No. 12", 0.8), (box, "ELM ROAD", 0.99), (box, "1O4", 0.9)])
        == "14"
    )
    assert peers.rapidocr_answer(None) == "" and peers.rapidocr_answer([(box, "A", 1.0)]) == ""
    data = {
        "text": ["", "Suite", "204", "Oak", "7", "St"],
        "conf": [-1, 90, 80, 95, 40, 96],
        "block_num": [1, 1, 1, 2, 3, 3],
        "par_num": [1] * 6,
        "line_num": [1, 1, 1, 1, 1, 1],
    }
    # block 1 ("Suite 204", mean 85) beats block 3 ("7 St", mean 68); block 2 has no digit
    assert peers.tesseract_answer(data) == "204"


def test_image_sets_are_the_real_photos_and_the_real_svhn_test_images():
    root = REPO.parent / "shared" / "data"
    root = type(root)(os.environ.get("DIGITREC_DATA_DIR", root))
    if not (root / "real_photos" / "labels.csv").is_file():
        message = f"no real photos under {root}"
        unavailable(message)
    sets = peers.items(root)
    assert len(sets["real_photos"]) == 59 and len(sets["svhn_real_test"]) == 261
    named = {name: number for name, _, number in sets["svhn_real_test"]}
    assert named["fixtures/2.png"] == "210"  # the fixture with labels 2, 1, 10
    assert all(path.is_file() for _, path, _ in sets["real_photos"] + sets["svhn_real_test"])


def test_table_sets_engines_side_by_side(tmp_path, capsys):
    def result(engine, correct, ms):
        return {
            "engine": engine,
            "name": engine.title(),
            "sets": {"photos": {"n": 10, "correct": correct, "ms_median": ms}},
        }

    paths = []
    for engine, correct, ms in (("digitrec", 2, 10.0), ("rapidocr", 8, 400.0)):
        paths.append(tmp_path / f"{engine}.json")
        paths[-1].write_text(json.dumps(result(engine, correct, ms)))
    assert peers.main(["table", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    assert "| set | Digitrec | Rapidocr |" in out
    assert "| photos: exact | 2/10 (20.0% ± 12.6%) | 8/10 (80.0% ± 12.6%) |" in out
    assert "| photos: median ms | 10 | 400 |" in out
    assert "photos 40.0x digitrec's time" in out
