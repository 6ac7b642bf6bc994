"""Output heads. Every head returns (length_logits (B, max_len + 2), digit_logits (B, max_len, C)).

Length classes are 0..max_len plus one for "longer than max_len" (the paper's ">5");
C is 10 digit classes, plus a blank class when the loss uses one.
"""

from __future__ import annotations

import torch
from torch import nn


class SeparateHead(nn.Module):
    """A length softmax and one independent digit softmax per position (the paper's head)."""

    def __init__(self, in_features: int, max_len: int, num_classes: int):
        super().__init__()
        self.max_len, self.num_classes = max_len, num_classes
        self.length = nn.Linear(in_features, max_len + 2)
        self.digits = nn.Linear(in_features, max_len * num_classes)  # = max_len separate layers

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        digits = self.digits(features).view(-1, self.max_len, self.num_classes)
        return self.length(features), digits
