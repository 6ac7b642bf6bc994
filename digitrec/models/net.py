"""DigitNet: trunk → head, built from plain arguments so a checkpoint rebuilds it without Hydra."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from digitrec.models.heads import RNNHead, SeparateHead, SharedHead
from digitrec.models.trunk import ConvTrunk

HEADS = {"separate": SeparateHead, "shared": SharedHead, "rnn": RNNHead}


class DigitNet(nn.Module):
    """Reads a number: images (B, C, H, W) in [0, 1] → length and per-position digit logits."""

    def __init__(
        self,
        in_channels: int = 1,
        height: int = 28,
        width: int = 112,
        max_len: int = 5,
        blank: bool = False,
        head: str = "separate",
        depth: int = 5,
        widths: Sequence[int] = (16, 32, 32, 64, 64),
        channels_last: bool = True,
        **trunk_kwargs,
    ):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"model.head={head!r}: expected one of {sorted(HEADS)}")
        self.max_len, self.blank = max_len, blank
        self.trunk = ConvTrunk(in_channels, height, width, depth, widths, **trunk_kwargs)
        self.head = HEADS[head](self.trunk.num_features, max_len, 10 + int(blank))
        # NHWC lets oneDNN pick faster convolutions on CPU (1.4x on the default net, 2 cores)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x.contiguous(memory_format=self.memory_format))

    def forward_head(
        self, features: torch.Tensor, teacher: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`teacher`: the true digits (B, max_len), for heads that feed back their previous digit."""
        return self.head(features, teacher)

    def forward(
        self, x: torch.Tensor, teacher: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_head(self.forward_features(x), teacher)
