"""CenterNet for numbers: where are the numbers in a whole photo, at full resolution?

A fully convolutional network (Zhou et al. 2019, "Objects as Points") over the photo letterboxed
to `size` x `size`: five stride-2 stages, a top-down path back to stride 4 (each stage's map added
in, FPN-style), and one 1x1 head giving, per output cell, a number-center logit, the box's width
and height (log, in output cells) and the center's sub-cell offset. Every number in the photo is a
peak: `decode` takes the local maxima over a threshold, so a photo yields any number of candidate
boxes (or none). `encode` makes the training targets from boxes: a Gaussian bump per center on
the heat map, sizes and offsets at the center cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from digitrec.models.net import model_cost

STRIDE = 4  # output cells per input pixel, each way


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class CenterNet(nn.Module):
    """Images (B, C, size, size) in [0, 1] → maps (B, 5, size / 4, size / 4): center logit, log
    width, log height, offset x, offset y."""

    def __init__(
        self,
        in_channels: int = 3,
        size: int = 512,
        widths: Sequence[int] = (16, 32, 64, 96, 128),
        head_width: int = 64,
        channels_last: bool = True,
    ):
        super().__init__()
        if len(widths) < 3 or size % 2 ** len(widths):
            raise ValueError(
                f"model.size={size}, model.widths={list(widths)}: expected 3 or more stages and "
                f"a size divisible by 2**stages ({2 ** max(len(widths), 3)})"
            )
        self.input_shape = (in_channels, size, size)
        self.stages = nn.ModuleList()
        c = in_channels
        for w in widths:
            self.stages.append(nn.Sequential(_block(c, w, 2), _block(w, w, 1)))
            c = w
        # stages 2.. (stride 4 and coarser) feed the top-down path
        self.lateral = nn.ModuleList(nn.Conv2d(w, head_width, 1) for w in widths[1:])
        self.smooth = _block(head_width, head_width, 1)
        self.head = nn.Conv2d(head_width, 5, 1)
        with torch.no_grad():  # a low prior on centers (CenterNet's -2.19: p = 0.1)
            self.head.bias.zero_()
            self.head.bias[0] = -2.19
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)

    def cost(self) -> dict[str, int]:
        return model_cost(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = []
        x = x.contiguous(memory_format=self.memory_format)
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        top = self.lateral[-1](maps[-1])
        for lateral, m in zip(reversed(self.lateral[:-1]), reversed(maps[1:-1]), strict=True):
            top = F.interpolate(top, size=m.shape[-2:], mode="nearest") + lateral(m)
        return self.head(self.smooth(top))


def _radius(w: float, h: float) -> float:
    """A Gaussian radius (output cells) that grows with the box: a third of its smaller side."""
    return max(1.0, min(w, h) / 3)


def encode(boxes: Sequence[torch.Tensor], out: int) -> dict[str, torch.Tensor]:
    """Training targets on an `out` x `out` map for each image's boxes (n, 4) x0, y0, x1, y1 in
    input pixels: heat (B, 1, out, out) — a Gaussian bump per center, 1 at the center cell —,
    size (B, 2, out, out) log width and height in cells, offset (B, 2, out, out), and mask
    (B, 1, out, out): 1 at center cells."""
    B = len(boxes)
    heat = torch.zeros(B, 1, out, out)
    size = torch.zeros(B, 2, out, out)
    offset = torch.zeros(B, 2, out, out)
    mask = torch.zeros(B, 1, out, out)
    ys, xs = torch.meshgrid(torch.arange(out).float(), torch.arange(out).float(), indexing="ij")
    for b, bx in enumerate(boxes):
        for x0, y0, x1, y1 in (bx.float() / STRIDE).tolist():
            w, h = x1 - x0, y1 - y0
            if w <= 0 or h <= 0:
                continue
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            ix, iy = min(int(cx), out - 1), min(int(cy), out - 1)
            sigma = _radius(w, h) / 3
            bump = torch.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma**2))
            heat[b, 0] = torch.maximum(heat[b, 0], bump)
            size[b, :, iy, ix] = torch.tensor([math.log(w), math.log(h)])
            offset[b, :, iy, ix] = torch.tensor([cx - ix, cy - iy])
            mask[b, 0, iy, ix] = 1.0
    return {"heat": heat, "size": size, "offset": offset, "mask": mask}


def focal_loss(logits: torch.Tensor, heat: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, summed and divided by the number of centers."""
    p = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    centers = heat.eq(1).float()
    pos = -torch.log(p) * (1 - p) ** 2 * centers
    neg = -torch.log(1 - p) * p**2 * (1 - heat) ** 4 * (1 - centers)
    return (pos.sum() + neg.sum()) / centers.sum().clamp(min=1)


@torch.no_grad()
def decode(maps: torch.Tensor, threshold: float = 0.3, k: int = 20) -> list[torch.Tensor]:
    """Each image's boxes (n, 5): x0, y0, x1, y1 in input pixels and the score, best first —
    the local maxima (3 x 3) of the center map over `threshold`, at most `k`."""
    heat = torch.sigmoid(maps[:, 0].float())
    peaks = heat * (F.max_pool2d(heat[:, None], 3, stride=1, padding=1)[:, 0] == heat)
    B, H, W = heat.shape
    scores, index = peaks.flatten(1).topk(min(k, H * W))
    out = []
    for b in range(B):
        keep = scores[b] >= threshold
        idx, s = index[b][keep], scores[b][keep]
        iy, ix = (idx // W).float(), (idx % W).float()
        m = maps[b].float().flatten(1)[:, idx]
        w, h = torch.exp(m[1].clamp(max=8)), torch.exp(m[2].clamp(max=8))
        cx, cy = ix + m[3], iy + m[4]
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1) * STRIDE
        out.append(torch.cat([boxes, s[:, None]], 1))
    return out


def match(pred: torch.Tensor, true: torch.Tensor, iou: float = 0.5) -> int:
    """How many true boxes (m, 4) a prediction (n, 4+; best first) covers at IoU >= `iou`, each
    true box and each prediction used once (greedy, best prediction first)."""
    if len(pred) == 0 or len(true) == 0:
        return 0
    p, t = pred[:, None, :4], true[None, :, :4]
    lt, rb = torch.maximum(p[..., :2], t[..., :2]), torch.minimum(p[..., 2:], t[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[..., 2:] - x[..., :2]).clamp(min=0).prod(-1)  # noqa: E731
    ious = inter / (area(p) + area(t) - inter).clamp(min=1e-9)
    used, hits = set(), 0
    for i in range(len(pred)):
        for j in torch.argsort(ious[i], descending=True).tolist():
            if j not in used and ious[i, j] >= iou:
                used.add(j)
                hits += 1
                break
    return hits
