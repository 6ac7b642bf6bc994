"""The models' arguments in one place: their defaults and their choices (the schema), as
nanoGPT's GPTConfig. The networks read them from here, the config check (digitrec.training)
checks choices against them; conf/model/*.yaml pick values for an experiment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

HEADS = ("separate", "shared", "rnn")  # digitrec.models.heads
LOSSES = ("mask", "blank")  # absent positions: no gradient (the paper) | an 11th class
POOL_PADDINGS = ("valid", "same")  # floor(size / 2) | ceil(size / stride)
CONTEXTS = (None, "gru")  # a bidirectional GRU along the feature map's columns, or none


@dataclass(frozen=True)
class TrunkConfig:
    """ConvTrunk's arguments (digitrec.models.trunk explains each)."""

    in_channels: int = 1
    height: int = 28
    width: int = 112
    depth: int = 5
    widths: Sequence[int] = (16, 32, 32, 64, 64)  # the last width repeats when depth is larger
    kernel_size: int = 3
    first_kernel_size: int = 5
    first_stride: int = 1
    pool: Sequence[bool | int] = (True, False)  # cyclic: pool after layers 1, 3, 5, ...
    pool_padding: str = "valid"
    min_pool_size: int = 3
    batch_norm: bool = True
    maxout: int = 1
    subtractive_norm: bool = False
    conv_dropout: float = 0.0
    locally_connected: int = 0
    lc_kernel_size: int = 3
    fc: Sequence[int] = (512,)
    fc_dropout: float = 0.3
    context: str | None = None
    context_size: int = 128

    def __post_init__(self) -> None:
        if self.pool_padding not in POOL_PADDINGS:
            raise ValueError(
                f"model.pool_padding={self.pool_padding!r}: expected 'valid' or 'same'"
            )
        if self.maxout < 1:
            raise ValueError(f"model.maxout={self.maxout}: expected 1 (off) or more pieces")
        if self.context not in CONTEXTS:
            raise ValueError(f"model.context={self.context!r}: expected null or 'gru'")
