"""`digitrec-predict`: read the numbers in photos or a video with a trained reader.

digitrec-predict photo.jpg photos/                      # the pretrained detector (digitrec.pretrained)
digitrec-predict DETECTOR.ckpt photos/ more/*.jpg one.png   # a detector of your own (experiment=detector)
digitrec-predict READER.ckpt photos/ --localizer LOCALIZER.ckpt   # the older two-stage reader
digitrec-predict READER.ckpt photos/ --localizer L.ckpt --annotate annotated/
digitrec-predict READER.ckpt --localizer L.ckpt --video street.mp4 --out street.read.mp4
digitrec-predict READER.ckpt --localizer L.ckpt --video 0 --show      # camera 0, live

Prints one JSON line per image: {"file", "number", "confidence", "box": [x0, y0, x1, y1]}
(photo pixels; box is the whole photo without a localizer or without an answer; a detector adds
"candidates": every candidate number with its box, digit boxes, orientation and score; "number"
is "" when none scores over the detector's answer threshold); an unreadable file gets
{"file", "error"} and the others go on (so does a folder without images, an image declaring
more than --max-mpx, a decompression bomb); the exit code is 1 when any failed. A video prints one
line per frame read ({"frame", "time", ...}) and writes the annotated video.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from pathlib import Path

import torch

from digitrec.cli._common import (
    add_fallback_argument,
    cli_parser,
    positive_float,
    positive_int,
    size32,
)
from digitrec.inference.annotate import draw, encode
from digitrec.inference.images import (
    IMAGE_SUFFIXES,
    ImageError,
    expand_inputs,
    load_image_scaled,
)
from digitrec.inference.pipeline import PhotoReader
from digitrec.io import atomic_write_bytes
from digitrec.registry import open_reader

log = logging.getLogger(__name__)


def _emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def _inputs(items: list[str]):
    """(name, None, root) for each image of each item (root: the folder it was found in, else
    None), (item, error, None) for a folder without images."""
    for item in items:
        names = list(expand_inputs([item]))
        if not names:
            yield item, f"{item}: no images in this folder ({', '.join(IMAGE_SUFFIXES)})", None
        root = item if Path(item).is_dir() else None
        yield from ((name, None, root) for name in names)


def annotated_name(name: str, suffix: str, root: str | None = None) -> Path:
    """Where an input's annotated copy goes under --annotate: its path relative to the folder it
    was found in (`root`), else as given — relative to the working directory when it is inside
    it, else without its root —, `..` made `__`: a/x.jpg and b/x.jpg stay apart, and every copy
    lands inside the folder."""
    p = Path(name)
    if root is not None:
        p = p.relative_to(root)
    elif p.is_absolute():
        try:
            p = p.relative_to(Path.cwd())
        except ValueError:
            pass
    parts = [("__" if part == ".." else part) for part in p.parts if part not in (p.anchor, ".")]
    return Path(*parts).with_suffix(suffix) if parts else Path("image" + suffix)


def read_files(
    reader: PhotoReader, items: list[str], annotate: Path | None, max_pixels: int | None = None
) -> int:
    """One JSON line per image (a folder without images: an error line); returns how many
    failed. Every image is bounded (images.load_image): a bomb is that file's error line."""
    failed = 0
    for name, problem, root in _inputs(items):
        try:
            if problem:
                raise ImageError(problem)
            image, factor = load_image_scaled(name, max_pixels)
        except ImageError as e:
            failed += 1
            _emit({"file": name, "error": str(e)})
            print(f"digitrec-predict: {e}", file=sys.stderr)
            continue
        reading = reader(image)
        # boxes in the photo's pixels, also when the decoder reduced a very large JPEG
        _emit({"file": name, **reading.scaled(factor).to_dict()})
        if annotate is not None:
            suffix = Path(name).suffix.lower()
            suffix = suffix if suffix in (".jpg", ".jpeg", ".png") else ".png"
            image_out = encode(draw(image, reading), suffix)
            atomic_write_bytes(annotate / annotated_name(name, suffix, root), image_out)
    return failed


def read_video(
    reader: PhotoReader,
    source: str,
    out: Path | None,
    show: bool,
    every: int,
    max_frames: int | None,
) -> int:
    """Read every `every`-th frame of a video file or camera (an index); write the annotated
    video to `out` (temporary file, renamed when complete) and/or show it live."""
    import cv2

    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        raise ValueError(
            f"--video {source}: cannot open it (not a video file OpenCV can read, "
            "or no such camera)"
        )
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    writer = tmp = None
    frames = 0
    reading = None
    try:
        while max_frames is None or frames < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            if frames % every == 0:
                reading = reader(rgb)
                _emit({"frame": frames, "time": round(frames / fps, 3), **reading.to_dict()})
            shown = cv2.cvtColor(draw(rgb, reading), cv2.COLOR_RGB2BGR)
            if out is not None:
                if writer is None:
                    tmp = out.with_name(f".{out.stem}.{uuid.uuid4().hex[:8]}{out.suffix}")
                    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if out.suffix == ".mp4" else "MJPG"))
                    writer = cv2.VideoWriter(str(tmp), fourcc, fps, shown.shape[1::-1])
                    if not writer.isOpened():
                        raise ValueError(
                            f"--out {out}: OpenCV cannot write this video format (use .mp4 or .avi)"
                        )
                writer.write(shown)
            if show:
                cv2.imshow("digitrec", shown)
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
            frames += 1
    except KeyboardInterrupt:
        pass
    finally:
        capture.release()
        if writer is not None:
            writer.release()
            if frames:
                os.replace(tmp, out)
            else:
                Path(tmp).unlink(missing_ok=True)
    if frames == 0:
        raise ValueError(f"--video {source}: no frames could be read")
    if out is not None:
        print(f"digitrec-predict: {frames} frames → {out}", file=sys.stderr)
    return 0


def parser():
    p = cli_parser("digitrec-predict", __doc__, reader_optional=True)
    p.add_argument("images", nargs="*", help="image files, folders (recursive) or globs")
    p.add_argument(
        "--annotate",
        default=None,
        metavar="DIR",
        help="write each image with its box and number into DIR (at its path as given: a/x.jpg and b/x.jpg stay apart)",
    )
    p.add_argument(
        "--video",
        default=None,
        metavar="PATH_OR_INDEX",
        help="read a video file, or a camera by its index",
    )
    p.add_argument(
        "--out",
        default=None,
        help="--video: the annotated video (.mp4 or .avi; default <name>.read.mp4 "
        "for a file, none for a camera)",
    )
    p.add_argument(
        "--show", action="store_true", help="--video: show frames live (needs a display)"
    )
    p.add_argument("--every", type=positive_int, default=1, help="--video: read every N-th frame")
    p.add_argument(
        "--max-frames", type=positive_int, default=None, help="--video: stop after N frames"
    )
    add_fallback_argument(p)
    p.add_argument(
        "--sizes",
        type=size32,
        nargs="+",
        default=None,
        metavar="PX",
        help="a detector: the long sides it reads the photo at (a pyramid, digits merged; "
        "multiples of 32; default: its own)",
    )
    p.add_argument(
        "--max-mpx",
        type=positive_float,
        default=None,
        help="largest image, megapixels (default 50, or DIGITREC_MAX_PIXELS; a "
        "larger JPEG is decoded smaller, other formats refused)",
    )
    p.add_argument(
        "--threads", type=positive_int, default=None, help="torch threads (default: all cores)"
    )
    return p


def _is_model(ref: str) -> bool:
    """A checkpoint file or a model URI, as opposed to an image, a folder or a glob."""
    from digitrec.registry import is_model_uri

    return is_model_uri(ref) or Path(ref).suffix.lower() in (".ckpt", ".pt", ".pth")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_intermixed_args(argv)  # images may come before or after options
    if args.checkpoint is not None and not _is_model(args.checkpoint):
        args.images.insert(0, args.checkpoint)  # no model given: the first argument is an image
        args.checkpoint = None
    if not args.images and args.video is None:
        parser().error("give images (files, folders, globs) or --video")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.checkpoint is None:
            if args.localizer:
                raise ValueError("--localizer needs the reader's checkpoint before the images")
            from digitrec import pretrained

            reader = open_reader(pretrained.path("detector"), sizes=args.sizes)
        else:
            reader = open_reader(
                args.checkpoint, args.localizer, fallback=args.fallback, sizes=args.sizes
            )
        annotate = None
        if args.annotate:
            annotate = Path(args.annotate)
            annotate.mkdir(parents=True, exist_ok=True)
        max_pixels = None if args.max_mpx is None else int(args.max_mpx * 1e6)
        failed = read_files(reader, args.images, annotate, max_pixels) if args.images else 0
        if args.video is not None:
            out = Path(args.out) if args.out else None
            if out is None and not args.video.isdigit() and not args.show:
                out = Path(Path(args.video).stem + ".read.mp4")
            read_video(reader, args.video, out, args.show, max(1, args.every), args.max_frames)
    except (FileNotFoundError, ValueError) as e:
        print(f"digitrec-predict: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # cv2.error from --show on a headless OpenCV, ...
        print(f"digitrec-predict: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    if failed:
        print(f"digitrec-predict: {failed} of the inputs could not be read", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
