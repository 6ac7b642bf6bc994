"""Output heads. Every head takes (features, teacher=None, columns=None) and returns
(length_logits (B, max_len + 2), digit_logits (B, max_len, C)). `features` (B, F) is the trunk's
output; `teacher`, the true digits (B, max_len), matters only to heads that feed back their
previous digit; `columns` (B, W, D), the trunk's columns left to right, only to attention.

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

    def forward(self, features: torch.Tensor, teacher=None, columns=None):
        digits = self.digits(features).view(-1, self.max_len, self.num_classes)
        return self.length(features), digits


class SharedHead(nn.Module):
    """One digit classifier shared by all positions, fed position-specific features: a per-position
    projection (the seed notebooks' "share the weights between the softmax classifiers")."""

    def __init__(self, in_features: int, max_len: int, num_classes: int, hidden: int = 128):
        super().__init__()
        self.max_len, self.num_classes, self.hidden = max_len, num_classes, hidden
        self.length = nn.Linear(in_features, max_len + 2)
        self.positions = nn.Linear(in_features, max_len * hidden)  # one projection per position
        self.classifier = nn.Linear(hidden, num_classes)  # the shared softmax

    def forward(self, features: torch.Tensor, teacher=None, columns=None):
        per_position = torch.relu(self.positions(features)).view(-1, self.max_len, self.hidden)
        return self.length(features), self.classifier(per_position)


class RNNHead(nn.Module):
    """A recurrent decoder: a GRU cell emits one symbol per step — a digit or END — fed its previous
    digit (the true one in training: teacher forcing; its own argmax otherwise).

    `attention_features=D` (> 0) adds additive attention over the trunk's D-dimensional columns
    (Show, Attend and Tell; Bahdanau et al. 2015): at every step the cell also reads a weighted
    mean of the columns, the weights computed from its state; `last_attention` keeps them
    (B, max_len + 1, W) for plots.

    It returns what every head returns: length log-probabilities, P(L = l) = P(END at step l) ×
    P(no END before), with the last class "no END within max_len steps", and per-position digit
    logits (the digit softmax given that the number goes on), so the joint decode is unchanged.
    """

    def __init__(
        self,
        in_features: int,
        max_len: int,
        num_classes: int,
        hidden: int = 256,
        embed: int = 32,
        attention_features: int = 0,
        attention_size: int = 128,
    ):
        super().__init__()
        self.max_len, self.num_classes = max_len, num_classes
        self.init = nn.Linear(in_features, hidden)
        self.context = nn.Linear(in_features, hidden)
        self.embed = nn.Embedding(num_classes + 1, embed)  # the last index is the start symbol
        self.attention_features = attention_features
        if attention_features:
            self.att_keys = nn.Linear(attention_features, attention_size)
            self.att_query = nn.Linear(hidden, attention_size, bias=False)
            self.att_score = nn.Linear(attention_size, 1, bias=False)
        self.cell = nn.GRUCell(embed + hidden + attention_features, hidden)
        self.out = nn.Linear(hidden, num_classes + 1)  # digits, then END
        self.last_attention: torch.Tensor | None = None

    def _attend(self, h: torch.Tensor, keys: torch.Tensor, columns: torch.Tensor):
        scores = self.att_score(torch.tanh(keys + self.att_query(h)[:, None])).squeeze(-1)
        weights = torch.softmax(scores, -1)  # (B, W)
        return torch.bmm(weights[:, None], columns).squeeze(1), weights

    def forward(
        self,
        features: torch.Tensor,
        teacher: torch.Tensor | None = None,
        columns: torch.Tensor | None = None,
    ):
        B = features.shape[0]
        h = torch.tanh(self.init(features))
        ctx = torch.relu(self.context(features))
        if self.attention_features:
            if columns is None:
                raise ValueError("RNNHead with attention needs the trunk's columns")
            keys = self.att_keys(columns)  # (B, W, attention_size), computed once
        prev = torch.full((B,), self.num_classes, dtype=torch.long, device=features.device)
        log_end, log_go, digit_logits, attention = [], [], [], []
        for t in range(self.max_len + 1):
            inputs = [self.embed(prev), ctx]
            if self.attention_features:
                glimpse, weights = self._attend(h, keys, columns)
                inputs.append(glimpse)
                attention.append(weights)
            h = self.cell(torch.cat(inputs, 1), h)
            logp = torch.log_softmax(self.out(h), -1)
            log_end.append(logp[:, -1])
            log_go.append(torch.logsumexp(logp[:, :-1], -1))
            if t == self.max_len:
                break
            digit_logits.append(logp[:, :-1])
            if teacher is not None:
                prev = teacher[:, t].clamp(min=0)  # absent positions (PAD) feed digit 0; masked
            else:
                prev = logp[:, :-1].argmax(-1)
        self.last_attention = torch.stack(attention, 1).detach() if attention else None
        go = torch.stack(log_go, 1).cumsum(1)  # log P(no END up to and including step t)
        before = torch.cat([go.new_zeros(B, 1), go[:, :-1]], 1)
        length = torch.cat([before + torch.stack(log_end, 1), go[:, -1:]], 1)  # (B, max_len + 2)
        return length, torch.stack(digit_logits, 1)
