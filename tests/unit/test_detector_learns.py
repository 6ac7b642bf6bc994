"""A detector trained a few steps on photo scenes finds the number in a scene with words beside
it far better than chance: the pipeline (scenes → views → targets → loss → decode) learns."""

import numpy as np
import torch

from digitrec.data.photo_augment import view
from digitrec.data.photo_scenes import Labelled, scene
from digitrec.data.scenes import clutter
from digitrec.data.street.glyphs import find_fonts
from digitrec.models.detector import HEAT
from digitrec.tasks import NumberDetector

SIZE = 128


def test_a_few_steps_on_scenes_find_the_number_among_words():
    fonts = find_fonts()[:2]
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images, digits, numbers = [], [], []
    while len(images) < 8:
        bg = Labelled(clutter(rng, 160, 160), np.zeros((0, 5), np.float32), ())
        s = scene(rng, bg, fonts, numbers=(1, 1), words=(2, 2))
        image, d = view(rng, s, SIZE, digit_px=(14, 24), tilt=0)
        if (d[:, 0] >= 0).sum() < 1:
            continue
        images.append(image)
        digits.append(torch.from_numpy(d))
        real = d[d[:, 0] >= 0]
        numbers.append((real[:, 1].min(), real[:, 2].min(), real[:, 3].max(), real[:, 4].max()))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    model = NumberDetector(size=SIZE, widths=[16, 16, 32, 32, 32], head_width=16)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(120):
        loss = model.loss(model(x), digits)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        heat = torch.sigmoid(model(x)[:, HEAT])
    hits, chance = 0, 0.0
    for i, (x0, y0, x1, y1) in enumerate(numbers):
        iy, ix = divmod(int(heat[i].argmax()), heat.shape[-1])
        cx, cy = (ix + 0.5) * 4, (iy + 0.5) * 4
        hits += x0 - 4 <= cx <= x1 + 4 and y0 - 4 <= cy <= y1 + 4
        chance += (x1 - x0 + 8) * (y1 - y0 + 8) / SIZE**2
    assert hits >= 6, (hits, chance)  # of 8; chance: the numbers' share of the pixels
    assert chance < 2.0
