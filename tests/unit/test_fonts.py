"""`digitrec-data fonts`: pinned packages fetched, checked against their integrity, extracted
once; the renderer reads them. No network: the registry is a local function here."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import matplotlib
import pytest

from digitrec.data import fonts, street
from digitrec.data.download import DownloadError

DEJAVU = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def _package(family: str, weights: tuple[str, ...]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for w in weights:  # a real font's bytes under the @fontsource file name
            data = DEJAVU.read_bytes()
            info = tarfile.TarInfo(f"package/files/{family}-latin-{w}-normal.woff")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_fonts_are_fetched_checked_extracted_once(tmp_path, monkeypatch):
    good, bad = _package("sans", ("400", "700")), _package("slab", ("400",))
    families = (
        ("sans", "1.0.0", fonts.integrity(good), len(good), ("400", "700")),
        ("slab", "2.0.0", fonts.integrity(b"other bytes"), len(bad), ("400",)),
    )
    served = {fonts.tarball_url("sans", "1.0.0"): good, fonts.tarball_url("slab", "2.0.0"): bad}
    calls = []

    def fake_download(url, dest, size=None, timeout=None, progress=True):
        calls.append(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(served[url])
        return dest

    monkeypatch.setattr(fonts, "download", fake_download)
    with pytest.raises(DownloadError, match=r"1 of 2 font packages .*slab@2.0.0.*integrity"):
        fonts.ensure_fonts(tmp_path, families, progress=False)
    got = fonts.font_files(tmp_path)
    assert [p.name for p in got] == ["sans-400.woff", "sans-700.woff"]
    assert not any((tmp_path / "fonts" / "npm").iterdir())  # tarballs gone, the bad one too
    calls.clear()
    assert fonts.ensure_fonts(tmp_path, families[:1], progress=False) == got and calls == []
    found = street.find_fonts(got)
    assert found[:2] == [str(p) for p in got]  # fetched fonts first, then the machine's


def test_pinned_families_are_well_formed():
    names = [f[0] for f in fonts.FAMILIES]
    assert len(names) == len(set(names)) >= 60
    for _family, version, integrity, size, weights in fonts.FAMILIES:
        assert integrity.startswith("sha512-") and size > 1000 and weights
        assert all(w.isdigit() for w in weights) and version.count(".") == 2
