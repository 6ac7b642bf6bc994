"""CenterNet for digits: every digit in a whole photo, at full resolution, found and classified.

A fully convolutional network (Zhou et al. 2019, "Objects as Points") over the photo letterboxed
to `size` x `size` (any multiple of 32 at inference): five stride-2 stages, a top-down path back
to stride 4 (each stage's map added in, FPN-style), and one 1x1 head giving, per output cell, a
digit-center logit (one heat map for all digits: every digit of every class teaches it where
digits are), ten class logits (which digit, a softmax read at the center), the digit box's width
and height (log, in output cells) and the center's sub-cell offset. Every digit is a peak:
`decode` takes the local maxima of the heat map over a threshold, its class the softmax's best
there, its score heat x class probability; `digitrec.models.grouping` joins digits into numbers
(rows and vertical stacks). `encode` makes the training targets: a Gaussian bump per digit,
its class, size and offset at the center cell, and an ignore mask over characters that are not
digits or not read (they are neither digit nor background).
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


CLASSES = 10  # the digits 0-9
HEAT, CLS, SIZE, OFFSET = 0, slice(1, 11), slice(11, 13), slice(13, 15)  # the head's channels
CHANNELS = 15  # heat, ten class logits, log width, log height, offset x, offset y


class CenterNet(nn.Module):
    """Images (B, C, H, W) in [0, 1], H and W multiples of 32 → maps (B, 15, H / 4, W / 4): the
    digit-center logit, ten class logits, log width, log height, offset x, offset y."""

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
        self.head = nn.Conv2d(head_width, CHANNELS, 1)
        with torch.no_grad():  # a low prior on centers (CenterNet's -2.19: p = 0.1)
            self.head.bias.zero_()
            self.head.bias[HEAT] = -2.19
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


class DigitClassifier(nn.Module):
    """Crops (B, 3, S, S) in [0, 1] → logits (B, 11): the digits 0-9 and "no digit". Reads each digit
    the CenterNet found, cut from the photo at full resolution (digitrec.data.photo_augment
    .digit_crops): three conv stages (two convs each, then a 2 x 2 max pool), a linear layer."""

    def __init__(self, in_channels: int = 3, width: int = 32, size: int = 32):
        super().__init__()
        layers, c = [], in_channels
        for w in (width, width * 2, width * 4):
            layers += [_block(c, w, 1), _block(w, w, 1), nn.MaxPool2d(2)]
            c = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.2), nn.Linear(c * (size // 8) ** 2, CLASSES + 1)
        )
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _radius(w: float, h: float) -> float:
    """A Gaussian radius (output cells) that grows with the box: a third of its smaller side."""
    return max(1.0, min(w, h) / 3)


def encode(digits: Sequence[torch.Tensor], out_h: int, out_w: int) -> dict[str, torch.Tensor]:
    """Training targets on an `out_h` x `out_w` map for each image's digits (n, 5): class (-1: not
    a digit, ignored), x0, y0, x1, y1 in input pixels: heat (B, 1, h, w) — a Gaussian bump per
    digit, 1 at the center cell —, cls (B, h, w) the digit at center cells (-100 elsewhere), size
    (B, 2, h, w) log width and height in cells, offset (B, 2, h, w), mask (B, 1, h, w): 1 at
    center cells, and ignore (B, 1, h, w): 1 over the boxes of class -1."""
    B = len(digits)
    heat = torch.zeros(B, 1, out_h, out_w)
    cls = torch.full((B, out_h, out_w), -100, dtype=torch.long)
    size = torch.zeros(B, 2, out_h, out_w)
    offset = torch.zeros(B, 2, out_h, out_w)
    mask = torch.zeros(B, 1, out_h, out_w)
    ignore = torch.zeros(B, 1, out_h, out_w)
    ys, xs = torch.meshgrid(torch.arange(out_h).float(), torch.arange(out_w).float(), indexing="ij")
    for b, d in enumerate(digits):
        for c, x0, y0, x1, y1 in d.float().tolist():
            x0, y0, x1, y1 = x0 / STRIDE, y0 / STRIDE, x1 / STRIDE, y1 / STRIDE
            w, h = x1 - x0, y1 - y0
            if w <= 0 or h <= 0:
                continue
            if c < 0:
                rows = slice(max(0, int(y0)), int(math.ceil(y1)))
                ignore[b, 0, rows, max(0, int(x0)) : int(math.ceil(x1))] = 1
                continue
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            if not (0 <= cx < out_w and 0 <= cy < out_h):
                continue
            ix, iy = int(cx), int(cy)
            sigma = _radius(w, h) / 3
            bump = torch.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma**2))
            heat[b, 0] = torch.maximum(heat[b, 0], bump)
            cls[b, iy, ix] = int(c)
            size[b, :, iy, ix] = torch.tensor([math.log(w), math.log(h)])
            offset[b, :, iy, ix] = torch.tensor([cx - ix, cy - iy])
            mask[b, 0, iy, ix] = 1.0
    return {
        "heat": heat,
        "cls": cls,
        "size": size,
        "offset": offset,
        "mask": mask,
        "ignore": ignore,
    }


def focal_loss(
    logits: torch.Tensor, heat: torch.Tensor, ignore: torch.Tensor | None = None
) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, summed and divided by the number of centers;
    cells where `ignore` is 1 add no negative loss."""
    p = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    centers = heat.eq(1).float()
    pos = -torch.log(p) * (1 - p) ** 2 * centers
    neg = -torch.log(1 - p) * p**2 * (1 - heat) ** 4 * (1 - centers)
    if ignore is not None:
        neg = neg * (1 - ignore)
    return (pos.sum() + neg.sum()) / centers.sum().clamp(min=1)


@torch.no_grad()
def decode(maps: torch.Tensor, threshold: float = 0.3, k: int = 64) -> list[torch.Tensor]:
    """Each image's digits (n, 7): x0, y0, x1, y1 in input pixels, score, class, heat; best first — the
    local maxima (3 x 3) of the heat map over `threshold`, at most `k`, each one's class the
    softmax's best there and its score heat x that class's probability; then boxes that overlap
    a better one by IoU > 0.5 dropped (one digit, two peaks)."""
    heat = torch.sigmoid(maps[:, HEAT].float())
    peaks = heat * (F.max_pool2d(heat[:, None], 3, stride=1, padding=1)[:, 0] == heat)
    B, H, W = heat.shape
    scores, index = peaks.flatten(1).topk(min(k, H * W))
    out = []
    for b in range(B):
        keep = scores[b] >= threshold
        idx, s = index[b][keep], scores[b][keep]
        iy, ix = (idx // W).float(), (idx % W).float()
        m = maps[b].float().flatten(1)[:, idx]
        prob, cls = torch.softmax(m[CLS], 0).max(0)
        w, h = torch.exp(m[SIZE][0].clamp(max=8)), torch.exp(m[SIZE][1].clamp(max=8))
        cx, cy = ix + m[OFFSET][0], iy + m[OFFSET][1]
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1) * STRIDE
        found = torch.cat([boxes, (s * prob)[:, None], cls.float()[:, None], s[:, None]], 1)
        found = found[torch.argsort(found[:, 4], descending=True)]
        out.append(suppress(found))
    return out


def reclassify(found: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Digits (n, 7) from `decode` read again by the crop classifier's probabilities (n, 11):
    class its best digit, score heat x that digit's probability; a digit the classifier calls
    "no digit" (its most probable class) is dropped. Best first."""
    if len(found) == 0:
        return found
    best = probs.argmax(1)
    digit_prob, digit = probs[:, :CLASSES].max(1)
    out = found.clone()
    out[:, 4] = found[:, 6] * digit_prob
    out[:, 5] = digit.float()
    out = out[best < CLASSES]
    return out[torch.argsort(out[:, 4], descending=True)]


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU matrix of boxes (n, 4+) and (m, 4+)."""
    p, t = a[:, None, :4], b[None, :, :4]
    lt, rb = torch.maximum(p[..., :2], t[..., :2]), torch.minimum(p[..., 2:], t[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[..., 2:] - x[..., :2]).clamp(min=0).prod(-1)  # noqa: E731
    return inter / (area(p) + area(t) - inter).clamp(min=1e-9)


def suppress(found: torch.Tensor, iou: float = 0.5) -> torch.Tensor:
    if len(found) < 2:
        return found
    ious = _iou(found, found)
    keep = []
    for i in range(len(found)):  # best first
        if all(ious[i, j] <= iou for j in keep):
            keep.append(i)
    return found[keep]


def match(pred: torch.Tensor, true: torch.Tensor, iou: float = 0.5) -> int:
    """How many true boxes (m, 4) a prediction (n, 4+; best first) covers at IoU >= `iou`, each
    true box and each prediction used once (greedy, best prediction first)."""
    if len(pred) == 0 or len(true) == 0:
        return 0
    ious = _iou(pred, true)
    used, hits = set(), 0
    for i in range(len(pred)):
        for j in torch.argsort(ious[i], descending=True).tolist():
            if j not in used and ious[i, j] >= iou:
                used.add(j)
                hits += 1
                break
    return hits
