"""Issue 30, cases 3 and 9: peak memory of `digitrec-predict` on large and 16-bit images, and the
server's memory before and after reading a 12000x12000 JPEG (Linux: /proc).

    python experiments/bad_input/memory.py --out experiments/bad_input/memory.json

Every command reads with the shipped detector (no checkpoint given), so the figures are what a
user gets; each image is generated here into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

BIN = Path(sys.executable).parent


def image(w: int, h: int, mode: str = "RGB") -> Image.Image:
    """A smooth gradient with a dark number on it (compresses like a photo, not like noise)."""
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    if mode == "I;16":
        return Image.fromarray(((x + y) * 32767).astype(np.uint16))
    rgb = np.empty((h, w, 3), np.uint8)
    for band, (a, b) in enumerate(((0.6, 0.3), (0.3, 0.6), (0.5, 0.5))):
        rgb[..., band] = (x * a + y * b) * 255
    out = Image.fromarray(rgb)
    ImageDraw.Draw(out).text((w // 3, h // 3), "1729", fill=(20, 20, 20), font_size=h // 8)
    return out


def peak_rss(cmd: list[str]) -> tuple[float, float, str]:
    """(peak RSS in MB of the process, seconds, its last stderr line)."""
    start = time.time()
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True)
        rusage = os.wait4(p.pid, 0)[2]
        p.returncode = 0  # reaped by wait4
        err.seek(0)
        lines = err.read().strip().splitlines()
    return rusage.ru_maxrss / 1024, time.time() - start, lines[-1] if lines else ""


FILES = {  # key: (what, (width, height, mode), extension)
    "jpeg_640": ("JPEG 640x480 (the baseline: imports and the model)", (640, 480, "RGB"), "jpg"),
    "jpeg_4000": ("JPEG 4000x4000 (16 Mpx)", (4000, 4000, "RGB"), "jpg"),
    "jpeg_8000": ("JPEG 8000x8000 (64 Mpx)", (8000, 8000, "RGB"), "jpg"),
    "jpeg_12000": ("JPEG 12000x12000 (144 Mpx)", (12000, 12000, "RGB"), "jpg"),
    "png16_7000": ("16-bit PNG 7000x7000 (49 Mpx)", (7000, 7000, "I;16"), "png"),
    "png8_7000": ("8-bit RGB PNG 7000x7000 (49 Mpx)", (7000, 7000, "RGB"), "png"),
}


def make(folder: Path) -> None:
    for key, (_, (w, h, mode), ext) in FILES.items():
        im = image(w, h, mode)
        im.save(folder / f"{key}.{ext}", **({"quality": 90} if ext == "jpg" else {}))


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of `pid` in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None, help="write the figures here as JSON")
    ap.add_argument("--make", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.make:  # in a child process: the parent stays small, so a fork copies little
        make(Path(args.make))
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, __file__, "--make", str(tmp)], check=True)
        paths = {key: tmp / f"{key}.{ext}" for key, (_, _, ext) in FILES.items()}
        files = {key: what for key, (what, _, _) in FILES.items()}
        for key, what in files.items():
            mb, secs, err = peak_rss([str(BIN / "digitrec-predict"), str(paths[key])])
            rows.append(
                {
                    "what": f"digitrec-predict, {what}",
                    "bytes": paths[key].stat().st_size,
                    "peak_mb": round(mb),
                    "seconds": round(secs, 1),
                    "stderr": err,
                }
            )
            print(rows[-1], flush=True)
        port = 8765
        server = subprocess.Popen(
            [str(BIN / "digitrec-serve"), "--port", str(port), "--workers", "1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            before = rss_mb(server.pid)
            for key in ("jpeg_12000", "png16_7000"):
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/read",
                    data=paths[key].read_bytes(),
                    method="POST",
                    headers={
                        "Content-Type": "image/jpeg" if key.startswith("jpeg") else "image/png"
                    },
                )
                with urllib.request.urlopen(request, timeout=120) as r:
                    answer = json.loads(r.read())
                after = rss_mb(server.pid)
                rows.append(
                    {
                        "what": f"digitrec-serve, one upload: {files[key]}",
                        "rss_before_mb": round(before[0]),
                        "rss_after_mb": round(after[0]),
                        "peak_mb": round(after[1]),
                        "width": answer.get("width"),
                        "height": answer.get("height"),
                    }
                )
                print(rows[-1], flush=True)
        finally:
            server.terminate()
            server.wait(10)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "command": "python experiments/bad_input/memory.py",
        "rows": rows,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
