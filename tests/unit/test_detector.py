"""The detector's targets, decoding and matching: boxes → center map, sizes and offsets → the same
boxes back; greedy matching at IoU 0.5; the focal loss prefers the right map."""

import math

import pytest
import torch

from digitrec.models.detector import STRIDE, CenterNet, decode, encode, focal_loss, match
from digitrec.tasks import NumberDetector


def _perfect_maps(boxes: list[torch.Tensor], out: int) -> torch.Tensor:
    """The maps a perfect network would give: high logits at the centers, the true sizes and
    offsets there."""
    t = encode(boxes, out)
    logit = torch.where(t["mask"] > 0, torch.tensor(8.0), torch.tensor(-8.0))
    return torch.cat([logit, t["size"], t["offset"]], 1)


def test_boxes_survive_encoding_and_decoding():
    boxes = [
        torch.tensor([[40.0, 60.0, 120.0, 100.0], [200.0, 10.0, 230.0, 90.0]]),
        torch.zeros(0, 4),  # a photo without a number
    ]
    maps = _perfect_maps(boxes, 256 // STRIDE)
    got = decode(maps, threshold=0.5)
    assert len(got[1]) == 0 and len(got[0]) == 2
    order = torch.argsort(got[0][:, 0])
    torch.testing.assert_close(got[0][order, :4], boxes[0], atol=1e-3, rtol=0)
    assert match(got[0], boxes[0]) == 2


def test_the_center_map_is_one_at_centers_and_the_loss_prefers_it():
    boxes = [torch.tensor([[16.0, 16.0, 48.0, 32.0]])]
    t = encode(boxes, 16)
    assert t["heat"].max() == 1 and t["mask"].sum() == 1
    assert t["size"][0, :, 6, 8].tolist() == pytest.approx([math.log(8), math.log(4)])
    right = torch.where(t["heat"] == 1, torch.tensor(6.0), torch.tensor(-6.0))
    wrong = torch.roll(right, shifts=5, dims=-1)
    assert focal_loss(right, t["heat"]) < 0.1 < focal_loss(wrong, t["heat"])


def test_matching_counts_each_true_box_once():
    true = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    pred = torch.tensor(
        [[0.0, 0.0, 10.0, 10.0, 0.9], [1.0, 1.0, 10.0, 10.0, 0.8], [50.0, 50.0, 60.0, 60.0, 0.7]]
    )
    assert match(pred, true) == 1  # the second prediction overlaps a box already taken
    assert match(pred[:0], true) == 0 and match(pred, true[:0]) == 0


def test_the_network_gives_maps_at_stride_4_and_refuses_bad_sizes():
    net = CenterNet(size=128, widths=[8, 8, 16, 16, 16], head_width=8)
    assert net(torch.rand(2, 3, 128, 128)).shape == (2, 5, 32, 32)
    with pytest.raises(ValueError, match="model.size=100"):
        CenterNet(size=100)
    task = NumberDetector(size=128, widths=[8, 8, 16, 16, 16], head_width=8)
    assert task.default_preprocessing() == {"kind": "letterbox", "size": 128}
