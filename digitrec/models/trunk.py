"""The convolutional trunk: conv → (batch norm) → ReLU → (pool) → (dropout) blocks, then FC layers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _widths(widths: Sequence[int], depth: int) -> list[int]:
    """`depth` conv widths: the list as given, its last value repeated when it is too short."""
    if depth < 1:
        raise ValueError(f"model.depth={depth}: need at least one conv layer")
    widths = list(widths)
    if not widths:
        raise ValueError("model.widths is empty")
    return (widths + [widths[-1]] * depth)[:depth]


class ConvTrunk(nn.Module):
    """Conv layers of any depth; 2x2 max pooling after layer i when `pool[i % len(pool)]` is true
    and the map stays at least `min_pool_size` on its short side. `pool=(True, False)` pools after
    layers 0, 2, 4, ...; `(False, True)` after 1, 3, 5, ... (suits a strided first layer).

    `forward_map` gives the last feature map (for attention heads); `forward` the map read as
    columns left to right (through the column GRU when `context="gru"`), flattened, then the
    fully connected layers.
    """

    def __init__(
        self,
        in_channels: int = 1,
        height: int = 28,
        width: int = 112,
        depth: int = 5,
        widths: Sequence[int] = (16, 32, 32, 64, 64),
        kernel_size: int = 3,
        first_kernel_size: int = 5,
        first_stride: int = 1,
        pool: Sequence[bool] = (True, False),
        min_pool_size: int = 3,
        batch_norm: bool = True,
        conv_dropout: float = 0.0,
        fc: Sequence[int] = (512,),
        fc_dropout: float = 0.3,
        context: str | None = None,
        context_size: int = 128,
    ):
        super().__init__()
        blocks: list[nn.Module] = []
        c, h, w = in_channels, height, width
        for i, out in enumerate(_widths(widths, depth)):
            k, stride = (first_kernel_size, first_stride) if i == 0 else (kernel_size, 1)
            layer: list[nn.Module] = [
                nn.Conv2d(c, out, k, stride=stride, padding=k // 2, bias=not batch_norm)
            ]
            h, w = (h + 2 * (k // 2) - k) // stride + 1, (w + 2 * (k // 2) - k) // stride + 1
            if batch_norm:
                layer.append(nn.BatchNorm2d(out))
            layer.append(nn.ReLU(inplace=True))
            if pool[i % len(pool)] and min(h, w) // 2 >= min_pool_size:
                layer.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            if conv_dropout > 0:
                layer.append(nn.Dropout2d(conv_dropout))
            blocks.append(nn.Sequential(*layer))
            c = out
        self.conv = nn.Sequential(*blocks)
        self.map_shape = (c, h, w)
        # context="gru": a bidirectional GRU along the map's columns (left to right, as the digits
        # are read), so each column knows what lies to its left and right (CRNN, Shi et al. 2015)
        if context not in (None, "gru"):
            raise ValueError(f"model.context={context!r}: expected null or 'gru'")
        self.context = (
            nn.GRU(c * h, context_size, batch_first=True, bidirectional=True) if context else None
        )
        dims = [(2 * context_size if context else c * h) * w, *fc]
        fc_layers: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
            fc_layers += [nn.Linear(d_in, d_out), nn.ReLU(inplace=True)]
            if fc_dropout > 0:
                fc_layers.append(nn.Dropout(fc_dropout))
        self.fc = nn.Sequential(*fc_layers)
        self.num_features = dims[-1]

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        columns = self.conv(x).permute(0, 3, 1, 2).flatten(2)  # (B, W, C*H), left to right
        if self.context is not None:
            columns = self.context(columns)[0]  # (B, W, 2 * context_size)
        return self.fc(columns.flatten(1))
