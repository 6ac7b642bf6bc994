"""The detector's photo reader: photos fitted without enlarging, any aspect, boxes back in the
photo's pixels; a reading lists its candidates; nothing over the threshold is no answer."""

import numpy as np
import pytest
import torch

from digitrec.inference.detection import DetectorReader, fit
from digitrec.models.detector import CHANNELS, HEAT, STRIDE
from digitrec.tasks import NumberDetector


def test_fit_never_enlarges_keeps_the_aspect_and_pads_to_32():
    canvas, scale = fit(np.full((1000, 2000, 3), 255, np.uint8), 640)
    assert scale == pytest.approx(0.32) and canvas.shape == (320, 640, 3)
    canvas, scale = fit(np.full((50, 70, 3), 255, np.uint8), 640)
    assert scale == 1.0 and canvas.shape == (64, 96, 3)
    assert canvas[:50, :70].min() == 255 and canvas[50:].max() == 0 and canvas[:, 70:].max() == 0


class _OneDigit(torch.nn.Module):
    """A stand-in network: one digit 7, 8 x 12 cells, centered on cell (10, 5) of any input."""

    input_shape = (3, 128, 128)

    def forward(self, x):
        h, w = x.shape[-2] // STRIDE, x.shape[-1] // STRIDE
        maps = torch.zeros(x.shape[0], CHANNELS, h, w)
        maps[:, HEAT] = -9.0
        maps[:, HEAT, 5, 10] = 9.0
        maps[:, 1 + 7, 5, 10] = 9.0
        maps[:, 11:13, 5, 10] = torch.log(torch.tensor([2.0, 3.0]))
        return maps


def _reader(answer_threshold=0.5):
    module = NumberDetector(size=128, widths=[8, 8, 8, 8, 8], head_width=8)
    module.net = _OneDigit()
    module.preprocessing = {"kind": "letterbox", "size": 128}
    return DetectorReader(module, answer_threshold=answer_threshold)


def test_boxes_come_back_in_the_photos_pixels_whatever_the_scale():
    reading = _reader()(np.zeros((512, 1024, 3), np.uint8))  # fitted at scale 1/8
    x0, y0, x1, y1 = reading.box
    # cell (10, 5) at stride 4 = (40, 20) canvas px, 8 x 12 px, times 8 back to the photo
    assert reading.number == "7" and (x0, y0, x1, y1) == pytest.approx((288, 112, 352, 208))
    (c,) = reading.candidates
    assert c["number"] == "7" and c["orientation"] == "row" and len(c["digits"]) == 1


def test_below_the_answer_threshold_there_is_no_answer_but_the_candidate_is_listed():
    reading = _reader(answer_threshold=0.99)(np.zeros((128, 128, 3), np.uint8))
    assert reading.number == "" and reading.box == [0.0, 0.0, 128.0, 128.0]
    assert [c["number"] for c in reading.candidates] == ["7"]
    with pytest.raises(ValueError, match="RGB uint8"):
        _reader()(np.zeros((8, 8), np.uint8))
