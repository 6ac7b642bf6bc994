"""The convolutional trunk: conv → (batch norm) → ReLU or maxout → (max pool) → (subtractive
normalization) → (dropout) blocks, an optional locally connected layer, an optional column GRU,
then fully connected layers. `model=cnn` (the default) and `model=goodfellow` (the paper's network)
are two settings of it."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from digitrec.models.config import TrunkConfig


def _widths(widths: Sequence[int], depth: int) -> list[int]:
    """`depth` conv widths: the list as given, its last value repeated when it is too short."""
    if depth < 1:
        raise ValueError(f"model.depth={depth}: need at least one conv layer")
    widths = list(widths)
    if not widths:
        raise ValueError("model.widths is empty")
    return (widths + [widths[-1]] * depth)[:depth]


def _pool_stride(value) -> int:
    """A `model.pool` entry: true → 2x2 pooling with stride 2, false/0 → none, an int → that stride."""
    if isinstance(value, bool):
        return 2 if value else 0
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"model.pool entry {value!r}: expected true/false or a stride (0, 1, 2)")
    return value


class Maxout(nn.Module):
    """Max over groups of `pieces` consecutive channels (Goodfellow et al. 2013)."""

    def __init__(self, pieces: int):
        super().__init__()
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (x.shape[1] // self.pieces, self.pieces)).amax(2)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


class MaxPoolSame(nn.Module):
    """2x2 max pooling whose output is ceil(size / stride): the right and bottom edges are padded
    with -inf, so stride 1 keeps the size (the paper's alternating strides 2 and 1)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h = 1 if self.stride == 1 else h % 2
        pad_w = 1 if self.stride == 1 else w % 2
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), value=float("-inf"))
        return F.max_pool2d(x, 2, self.stride)

    def extra_repr(self) -> str:
        return f"stride={self.stride}"


class SubtractiveNorm(nn.Module):
    """Subtractive (local contrast) normalization (Jarrett et al. 2009): subtract from every unit
    the Gaussian-weighted mean of its neighbourhood over all channels. No parameters; at the
    borders the weights are renormalized over the part of the window inside the map."""

    def __init__(self, kernel_size: int = 5, sigma: float = 1.0):
        super().__init__()
        r = torch.arange(kernel_size, dtype=torch.float32) - kernel_size // 2
        g = torch.exp(-(r**2) / (2 * sigma**2))
        self.register_buffer("kernel", (g[:, None] * g[None, :])[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.kernel.shape[-1] // 2
        mean = x.mean(1, keepdim=True)
        local = F.conv2d(mean, self.kernel, padding=pad)
        weight = F.conv2d(torch.ones_like(mean[:1]), self.kernel, padding=pad)
        return x - local / weight


class LocallyConnected2d(nn.Module):
    """A convolution without weight sharing: every output position has its own k x k filters
    (zero padding keeps the size). Weights (positions, in_channels * k * k, out_channels)."""

    def __init__(
        self, in_channels: int, out_channels: int, height: int, width: int, kernel_size: int = 3
    ):
        super().__init__()
        self.kernel_size, self.out_channels, self.size = kernel_size, out_channels, (height, width)
        fan_in = in_channels * kernel_size * kernel_size
        bound = 1 / math.sqrt(fan_in)
        self.weight = nn.Parameter(
            torch.empty(height * width, fan_in, out_channels).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(height * width, out_channels).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = F.unfold(x, self.kernel_size, padding=self.kernel_size // 2)  # (B, fan_in, L)
        out = torch.einsum("bkl,lko->blo", patches, self.weight) + self.bias
        return out.transpose(1, 2).unflatten(2, self.size)  # (B, out, H, W)

    def extra_repr(self) -> str:
        return f"out_channels={self.out_channels}, size={self.size}, kernel_size={self.kernel_size}"


class ConvTrunk(nn.Module):
    """Conv layers of any depth; 2x2 max pooling after layer i with stride `pool[i % len(pool)]`
    (true = 2, false = none; `pool=[2, 1]` alternates strides 2 and 1 as in the paper) while the
    map stays at least `min_pool_size` on its short side (stride-2 pools only).
    `pool_padding="valid"` floors odd sizes; `"same"` gives ceil(size / stride).

    `maxout=k` makes the first layer maxout units of k pieces (no ReLU there);
    `subtractive_norm` follows every conv layer's pooling with SubtractiveNorm;
    `locally_connected=n` adds an unshared-weights layer of n units after the convolutions.

    `forward_map` gives the last feature map; `forward_columns` that map read as columns left to
    right (through the column GRU when `context="gru"`), (B, W, column_features); `forward` the
    columns flattened, through the fully connected layers, (B, num_features).
    """

    def __init__(self, **kwargs):
        super().__init__()
        self.config = cfg = TrunkConfig(**kwargs)  # defaults and choices: digitrec.models.config
        self.input_shape = (cfg.in_channels, cfg.height, cfg.width)
        blocks, (c, h, w) = self._conv_blocks(cfg)
        self.conv = nn.Sequential(*blocks)
        self.local = None
        if cfg.locally_connected:
            local: list[nn.Module] = [
                LocallyConnected2d(c, cfg.locally_connected, h, w, cfg.lc_kernel_size),
                nn.ReLU(inplace=True),
            ]
            if cfg.fc_dropout > 0:
                local.append(nn.Dropout(cfg.fc_dropout))
            self.local = nn.Sequential(*local)
            c = cfg.locally_connected
        self.map_shape = (c, h, w)
        # context="gru": a bidirectional GRU along the map's columns (left to right, as the digits
        # are read), so each column knows what lies to its left and right (CRNN, Shi et al. 2015)
        self.context = (
            nn.GRU(c * h, cfg.context_size, batch_first=True, bidirectional=True)
            if cfg.context
            else None
        )
        self.column_features = 2 * cfg.context_size if cfg.context else c * h
        dims = [self.column_features * w, *cfg.fc]
        fc_layers: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
            fc_layers += [nn.Linear(d_in, d_out), nn.ReLU(inplace=True)]
            if cfg.fc_dropout > 0:
                fc_layers.append(nn.Dropout(cfg.fc_dropout))
        self.fc = nn.Sequential(*fc_layers)
        self.num_features = dims[-1]

    @staticmethod
    def _conv_blocks(cfg: TrunkConfig) -> tuple[list[nn.Module], tuple[int, int, int]]:
        """The conv blocks (conv, batch norm, ReLU or maxout, pooling, normalization, dropout)
        and the shape of the map they leave."""
        strides = [_pool_stride(p) for p in cfg.pool] or [0]
        blocks: list[nn.Module] = []
        c, h, w = cfg.in_channels, cfg.height, cfg.width
        for i, out in enumerate(_widths(cfg.widths, cfg.depth)):
            k, stride = (
                (cfg.first_kernel_size, cfg.first_stride) if i == 0 else (cfg.kernel_size, 1)
            )
            pieces = cfg.maxout if i == 0 else 1
            bias = not cfg.batch_norm
            layer: list[nn.Module] = [
                nn.Conv2d(c, out * pieces, k, stride=stride, padding=k // 2, bias=bias)
            ]
            h, w = (h + 2 * (k // 2) - k) // stride + 1, (w + 2 * (k // 2) - k) // stride + 1
            if cfg.batch_norm:
                layer.append(nn.BatchNorm2d(out * pieces))
            layer.append(Maxout(pieces) if pieces > 1 else nn.ReLU(inplace=True))
            s = strides[i % len(strides)]
            if s == 1 or (s >= 2 and min(h, w) // s >= cfg.min_pool_size):
                if cfg.pool_padding == "same":
                    layer.append(MaxPoolSame(s))
                    h, w = -(-h // s), -(-w // s)
                else:
                    layer.append(nn.MaxPool2d(2, s))
                    h, w = (h - 2) // s + 1, (w - 2) // s + 1
            if cfg.subtractive_norm:
                layer.append(SubtractiveNorm())
            if cfg.conv_dropout > 0:
                layer.append(nn.Dropout2d(cfg.conv_dropout))
            blocks.append(nn.Sequential(*layer))
            c = out
        return blocks, (c, h, w)

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.local(x) if self.local is not None else x

    def forward_columns(self, x: torch.Tensor) -> torch.Tensor:
        columns = self.forward_map(x).permute(0, 3, 1, 2).flatten(2)  # (B, W, C*H), left to right
        if self.context is not None:
            columns = self.context(columns)[0]  # (B, W, 2 * context_size)
        return columns

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_columns(x).flatten(1))
