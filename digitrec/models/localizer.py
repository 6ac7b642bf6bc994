"""BoxNet: where is the number? A whole image (resized to a square) → its union box.

The first stage of the photo reader (digitrec/inference): a small CNN of strided stages regresses
the box that holds all the digits, as normalized x0, y0, x1, y1 (fractions of the image's width
and height, so any image size maps back). Trained with L1 + generalized IoU (GIoU, Rezatofighi
et al. 2019) on scenes (digitrec.data.scenes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from digitrec.models.net import model_cost


def box_iou(a: torch.Tensor, b: torch.Tensor, generalized: bool = False) -> torch.Tensor:
    """IoU (or GIoU) of paired boxes (N, 4) x0, y0, x1, y1 → (N,)."""
    lt, rb = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area = lambda x: (x[:, 2:] - x[:, :2]).clamp(min=0).prod(1)  # noqa: E731
    union = area(a) + area(b) - inter
    iou = inter / union.clamp(min=1e-9)
    if not generalized:
        return iou
    hull = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).prod(1)
    return iou - (hull - union) / hull.clamp(min=1e-9)


class BoxNet(nn.Module):
    """Images (B, C, size, size) in [0, 1] → union boxes (B, 4), normalized x0, y0, x1, y1.

    `widths`: one stage per entry, each a stride-2 3x3 conv then `blocks - 1` more 3x3 convs
    (BN + ReLU; `blocks` one number for every stage or one per stage); the last map (size / 2**len(widths) square) is flattened into `fc` units and a
    center/size head (sigmoid), so boxes are always well formed (x0 <= x1, y0 <= y1)."""

    def __init__(
        self,
        in_channels: int = 3,
        size: int = 128,
        widths: Sequence[int] = (16, 32, 64, 96, 128),
        blocks: int | Sequence[int] = (1, 1, 2, 2, 2),
        fc: int = 256,
        dropout: float = 0.1,
        channels_last: bool = True,
    ):
        super().__init__()
        if size % 2 ** len(widths):
            raise ValueError(
                f"model.size={size}: must be divisible by 2**len(widths) = {2 ** len(widths)}"
            )
        blocks = [blocks] * len(widths) if isinstance(blocks, int) else list(blocks)
        if len(blocks) != len(widths) or min(blocks) < 1:
            raise ValueError(
                f"model.blocks={blocks}: expected one count >= 1 or one per stage ({len(widths)})"
            )
        layers, c = [], in_channels
        for w, n in zip(widths, blocks, strict=True):
            for b in range(n):
                layers += [
                    nn.Conv2d(c, w, 3, stride=2 if b == 0 else 1, padding=1, bias=False),
                    nn.BatchNorm2d(w),
                    nn.ReLU(inplace=True),
                ]
                c = w
        self.input_shape = (in_channels, size, size)
        self.features = nn.Sequential(*layers)
        side = size // 2 ** len(widths)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * side * side, fc),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc, 4),
        )
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)

    def cost(self) -> dict[str, int]:
        return model_cost(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw = torch.sigmoid(
            self.head(self.features(x.contiguous(memory_format=self.memory_format)))
        )
        center, half = raw[:, :2], raw[:, 2:] / 2
        return torch.cat([center - half, center + half], 1)
