"""Figures logged with runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def prediction_grid(
    images: np.ndarray,
    true: list[str],
    pred: list[str],
    confidence: np.ndarray,
    path: str | Path,
    n: int = 32,
    cols: int = 4,
) -> Path:
    """A PNG of test images titled 'pred (confidence) / true': the first ones, then up to a
    quarter of the grid of mistakes (in red), so a reader sees typical cases and failures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wrong = [i for i in range(len(true)) if pred[i] != true[i]]
    n_wrong = min(len(wrong), n // 4)
    picks = [i for i in range(len(true)) if i not in set(wrong[:n_wrong])][: n - n_wrong]
    picks += wrong[:n_wrong]
    rows = -(-len(picks) // cols)
    h, w = images.shape[-2:]
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(cols * max(1.8, 2.6 * w / max(w, 2 * h)), rows * 1.1 + 0.4),
        squeeze=False,
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, picks, strict=False):
        image = images[i].squeeze()
        ax.imshow(image if image.ndim == 3 else image, cmap=None if image.ndim == 3 else "gray")
        ok = pred[i] == true[i]
        ax.set_title(
            f"{pred[i] or '∅'} ({confidence[i]:.2f}) / {true[i]}",
            fontsize=8,
            color="black" if ok else "red",
        )
    fig.suptitle("predicted (confidence) / true — mistakes in red", fontsize=9)
    return _save(fig, Path(path), dpi=100)


def finish_figure(fig, ax, path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    """Label, grid and legend a one-axes figure, write it as a PNG (atomically) and close it."""

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _save(fig, path: Path, dpi: float | None = None) -> Path:
    """Lay out, write as a PNG (temporary file, then rename) and close a figure."""
    import io

    import matplotlib.pyplot as plt

    from digitrec.io import atomic_write_bytes

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def box_grid(
    images: np.ndarray,
    true: np.ndarray,
    pred: np.ndarray,
    iou: np.ndarray,
    path: str | Path,
    n: int = 24,
    cols: int = 6,
) -> Path:
    """A PNG of scenes (N, 3, H, W) with the true union box (green) and the predicted one (red),
    titled with their IoU: the first ones, then up to a quarter of the grid of misses
    (IoU < 0.5). Boxes are normalized x0, y0, x1, y1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    miss = [int(i) for i in np.flatnonzero(iou < 0.5)][: n // 4]
    picks = [i for i in range(len(iou)) if i not in set(miss)][: n - len(miss)] + miss
    rows = -(-len(picks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.9, rows * 2.0 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, picks, strict=False):
        image = np.asarray(images[i]).transpose(1, 2, 0)
        h, w = image.shape[:2]
        ax.imshow(image)
        for box, color in ((true[i], "lime"), (pred[i], "red")):
            x0, y0, x1, y1 = np.asarray(box) * [w, h, w, h]
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color=color, lw=1.2))
        ax.set_title(f"IoU {iou[i]:.2f}", fontsize=8, color="black" if iou[i] >= 0.5 else "red")
    fig.suptitle("true box (green), predicted (red) — misses (IoU < 0.5) titled in red", fontsize=9)
    return _save(fig, Path(path), dpi=100)


def detection_grid(
    images: np.ndarray,
    true: list[np.ndarray],
    pred: list[np.ndarray],
    path: str | Path,
    n: int = 12,
    cols: int = 4,
) -> Path:
    """A PNG of photos (N, 3, H, W) with their true number boxes (green) and the detector's
    (red, with scores); boxes are x0, y0, x1, y1 (+ score) in the image's pixels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    picks = list(range(min(n, len(images))))
    rows = max(1, -(-len(picks) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.6, rows * 2.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, picks, strict=False):
        ax.imshow(images[i].transpose(1, 2, 0))
        for color, boxes in (("lime", true[i]), ("red", pred[i])):
            for b in boxes:
                x0, y0, x1, y1 = (float(v) for v in b[:4])
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color=color, lw=1))
                if len(b) > 4:
                    ax.text(x0, y0, f"{float(b[4]):.2f}", color="red", fontsize=6)
    fig.suptitle("true boxes (green), detected (red, score)", fontsize=9)
    return _save(fig, Path(path), dpi=100)
