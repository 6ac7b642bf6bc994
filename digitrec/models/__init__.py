"""Models: a CNN trunk of any depth and the output heads, joined in DigitNet."""

from digitrec.models.net import DigitNet

__all__ = ["DigitNet"]
