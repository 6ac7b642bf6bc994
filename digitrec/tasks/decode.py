"""Joint decoding over lengths, its confidence, and the evaluation metrics (written once, for every head).

Decode (the paper): L* = argmax_L log P(L) + Σ_{i<L} max_d log P(s_i = d). With a blank class,
positions at or past L must also be blank, so their log P(blank) joins the sum. The maximum is
the log-confidence; coverage at 98% accuracy ranks answers by it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

PAD = -1


@dataclass
class Decoded:
    length: torch.Tensor  # (B,) int64, 0..max_len
    digits: torch.Tensor  # (B, max_len) int64, PAD past length
    confidence: torch.Tensor  # (B,) probability of the decoded answer under the model


def joint_decode(length_logits: torch.Tensor, digit_logits: torch.Tensor) -> Decoded:
    """Exact joint argmax over lengths 0..max_len (the ">max_len" class is never an answer)."""
    length_lp = F.log_softmax(length_logits.float(), -1)
    digit_lp = F.log_softmax(digit_logits.float(), -1)
    B, M, C = digit_lp.shape
    best_lp, best = digit_lp[..., :10].max(-1)  # (B, M)
    zero = best_lp.new_zeros(B, 1)
    prefix = torch.cat([zero, best_lp.cumsum(1)], 1)  # (B, M+1): Σ_{i<L}
    scores = length_lp[:, : M + 1] + prefix
    if C == 11:  # blank class: positions >= L must be blank
        blank_lp = digit_lp[..., 10]
        suffix = torch.cat([blank_lp.flip(1).cumsum(1).flip(1), zero], 1)  # Σ_{i>=L}
        scores = scores + suffix
    score, length = scores.max(1)
    positions = torch.arange(M, device=best.device)
    digits = torch.where(positions < length[:, None], best, torch.full_like(best, PAD))
    return Decoded(length, digits, score.exp())


def coverage_at(confidence: torch.Tensor, correct: torch.Tensor, accuracy: float = 0.98) -> float:
    """Largest fraction of the most confident answers whose accuracy is at least `accuracy`."""
    n = len(correct)
    if n == 0:
        return 0.0
    order = torch.argsort(confidence, descending=True, stable=True)
    hits = correct[order].double().cumsum(0)
    acc = hits / torch.arange(1, n + 1, dtype=torch.float64, device=hits.device)
    ok = torch.nonzero(acc >= accuracy - 1e-12)
    return 0.0 if len(ok) == 0 else float(ok.max() + 1) / n


def sequence_correct(decoded: Decoded, length: torch.Tensor, digits: torch.Tensor) -> torch.Tensor:
    """Whole number right: same length and every digit (positions past the length are PAD)."""
    true = torch.where(digits >= 0, digits, torch.full_like(digits, PAD))
    return (decoded.length == length) & (decoded.digits == true).all(1)


def metrics(
    decoded: Decoded,
    digit_logits: torch.Tensor,
    length: torch.Tensor,
    digits: torch.Tensor,
    coverage_accuracy: float = 0.98,
) -> dict[str, float]:
    """sequence_accuracy (headline), digit_accuracy (per-position argmax over true digits),
    length_accuracy (decoded length), coverage_at_98 (fraction answerable at 98% accuracy)."""
    correct = sequence_correct(decoded, length, digits)
    present = digits >= 0
    digit_hits = (digit_logits[..., :10].argmax(-1) == digits) & present
    return {
        "sequence_accuracy": correct.float().mean().item(),
        "digit_accuracy": (digit_hits.sum() / present.sum().clamp(min=1)).item(),
        "length_accuracy": (decoded.length == length).float().mean().item(),
        f"coverage_at_{round(coverage_accuracy * 100)}": coverage_at(
            decoded.confidence, correct, coverage_accuracy
        ),
    }
