"""The digit detector's targets, decoding and matching: digit boxes → class maps, sizes and
offsets → the same digits back; characters of class -1 are ignored, not background; greedy
matching at IoU 0.5; the focal loss prefers the right map."""

import math

import pytest
import torch
import torch.nn.functional as F

from digitrec.models.detector import (
    CHANNELS,
    CLASSES,
    STRIDE,
    CenterNet,
    decode,
    encode,
    focal_loss,
    match,
    suppress,
)
from digitrec.tasks import NumberDetector


def _perfect_maps(digits: list[torch.Tensor], out: int) -> torch.Tensor:
    """The maps a perfect network would give: high logits at the centers of each digit's class,
    the true sizes and offsets there."""
    t = encode(digits, out, out)
    logit = torch.where(t["heat"] == 1, torch.tensor(8.0), torch.tensor(-8.0))
    cls = F.one_hot(t["cls"].clamp(min=0), CLASSES).permute(0, 3, 1, 2).float() * 8
    return torch.cat([logit, cls, t["size"], t["offset"]], 1)


def test_digits_survive_encoding_and_decoding():
    digits = [
        torch.tensor([[3.0, 40, 60, 60, 100], [7.0, 64, 60, 84, 100], [-1.0, 200, 10, 230, 90]]),
        torch.zeros(0, 5),  # a photo without a number
    ]
    maps = _perfect_maps(digits, 256 // STRIDE)
    got = decode(maps, threshold=0.5)
    assert len(got[1]) == 0 and len(got[0]) == 2  # the ignored character is no digit
    order = torch.argsort(got[0][:, 0])
    torch.testing.assert_close(got[0][order, :4], digits[0][:2, 1:], atol=1e-3, rtol=0)
    assert got[0][order, 5].tolist() == [3.0, 7.0]
    assert match(got[0], digits[0][:2, 1:]) == 2


def test_the_heat_map_is_one_at_centers_classes_there_ignore_masks_and_the_loss_prefers_it():
    digits = [torch.tensor([[5.0, 16, 16, 48, 32], [-1.0, 0, 40, 20, 60]])]
    t = encode(digits, 16, 16)
    assert t["heat"][0, 0, 6, 8] == 1 and t["cls"][0, 6, 8] == 5
    assert (t["cls"] >= 0).sum() == 1  # a class only at the center cell
    assert t["mask"].sum() == 1 and t["ignore"][0, 0, 10:15, 0:5].all()
    assert t["size"][0, :, 6, 8].tolist() == pytest.approx([math.log(8), math.log(4)])
    right = torch.where(t["heat"] == 1, torch.tensor(6.0), torch.tensor(-6.0))
    wrong = torch.roll(right, shifts=5, dims=-1)
    assert focal_loss(right, t["heat"]) < 0.1 < focal_loss(wrong, t["heat"])
    loud = right.clone()
    loud[0, :, 10:15, 0:5] = 6.0  # firing over the ignored character costs nothing
    assert focal_loss(loud, t["heat"], t["ignore"]) == pytest.approx(
        float(focal_loss(right, t["heat"], t["ignore"]))
    )


def test_matching_counts_each_true_box_once():
    true = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    pred = torch.tensor(
        [[0.0, 0.0, 10.0, 10.0, 0.9], [1.0, 1.0, 10.0, 10.0, 0.8], [50.0, 50.0, 60.0, 60.0, 0.7]]
    )
    assert match(pred, true) == 1  # the second prediction overlaps a box already taken
    assert match(pred[:0], true) == 0 and match(pred, true[:0]) == 0


def test_a_digit_found_twice_side_by_side_is_dropped_below_the_overlap():
    # x0, y0, x1, y1, score, class, heat; best first. The second is the first shifted by 40% of
    # its width (IoU 0.43): one "3" found twice reads "33"; the third is the next digit.
    found = torch.tensor(
        [
            [0.0, 0.0, 10.0, 20.0, 0.9, 3.0, 0.9],
            [4.0, 0.0, 14.0, 20.0, 0.6, 3.0, 0.6],
            [12.0, 0.0, 22.0, 20.0, 0.8, 4.0, 0.8],
        ]
    )
    assert suppress(found, 0.5).tolist() == found.tolist()  # 0.43 <= 0.5: all kept
    assert suppress(found, 0.35)[:, 5].tolist() == [3.0, 4.0]  # the weaker copy dropped
    with pytest.raises(ValueError, match=r"model.overlap=0: expected 0 < overlap <= 1"):
        NumberDetector(size=64, overlap=0)


def test_the_network_gives_maps_at_stride_4_any_size_and_refuses_bad_sizes():
    net = CenterNet(size=128, widths=[8, 8, 16, 16, 16], head_width=8)
    assert net(torch.rand(2, 3, 128, 128)).shape == (2, CHANNELS, 32, 32)
    assert net(torch.rand(1, 3, 64, 192)).shape == (1, CHANNELS, 16, 48)
    with pytest.raises(ValueError, match="model.size=100"):
        CenterNet(size=100)
    task = NumberDetector(size=128, widths=[8, 8, 16, 16, 16], head_width=8)
    assert task.default_preprocessing() == {"kind": "letterbox", "size": 128}
