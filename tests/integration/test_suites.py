"""Layout families of the generator and the evaluation suites built from them."""

import numpy as np
import pytest
from conftest import compose_cfg, make_glyphs, small_overrides
from helpers import bar_glyphs

from digitrec.data import suites
from digitrec.data.sequences import SequenceSpec, compose, compose_mixture, layout_spec

ALL_SUITES = suites.available()
BASE = SequenceSpec(max_len=5, height=28, width=112, gap=(1, 4))


def suite(name: str) -> suites.Suite:
    return suites.load(name, BASE)


def find_cells(image, glyphs, labels, digits, length, pitch=28):
    """The x where `length` cells of `pitch` px side by side each equal a glyph image with the
    right label; None when no x does."""
    for x0 in range(image.shape[1] - pitch * length + 1):
        cells = [image[:, x0 + pitch * i : x0 + pitch * (i + 1)] for i in range(length)]
        if all(
            any(np.array_equal(c, glyphs[j]) for j in np.nonzero(labels == d)[0])
            for c, d in zip(cells, digits[:length], strict=True)
        ):
            return x0
    return None


def test_issue_suites_exist():
    assert {"fixed_pitch", "fixed_pitch_fill", "wide_gaps", "touching", "scaled", "shifted"} <= set(
        ALL_SUITES
    )


@pytest.mark.parametrize("name", ALL_SUITES)
def test_every_suite_is_deterministic_for_its_seed(name):
    glyphs, labels = make_glyphs(300, 1)
    s = suite(name)
    a, b = s.build(glyphs, labels), s.build(glyphs, labels)
    assert len(a) == s.n and a.digits.shape[1] == 5
    assert np.array_equal(a.images, b.images) and np.array_equal(a.digits, b.digits)
    other = suites.Suite(s.name, s.spec, s.n, s.seed + 1, positions=5).build(glyphs, labels)
    assert not np.array_equal(a.images, other.images)


def test_fixed_pitch_images_are_28px_cells_side_by_side():
    """Lengths 2-4 fit the 112-px canvas: every cell is exactly one test glyph, label in order."""
    glyphs, labels = make_glyphs(300, 1)  # noisy glyphs: a cell matches only its own image
    s = suite("fixed_pitch")
    data = compose(glyphs, labels, s.spec, 60, np.random.default_rng(0))
    placed = [i for i in range(60) if data.length[i] <= 4]
    assert len(placed) > 30 and set(np.unique(data.length)) == {2, 3, 4, 5}
    for i in placed:
        n = data.length[i]
        x0 = find_cells(data.images[i], glyphs, labels, data.digits[i], n)
        assert x0 is not None, i
        # nothing drawn outside the cells
        outside = np.delete(data.images[i], np.s_[x0 : x0 + 28 * n], axis=1)
        assert outside.max(initial=0) == 0


def test_fill_resizes_the_number_to_the_canvas_width():
    glyphs, labels = bar_glyphs()
    spec = SequenceSpec(min_len=2, max_len=2, pitch=28, jitter=0, fill=True)
    s = compose(glyphs, labels, spec, 20, np.random.default_rng(0))
    # 6-px bars at x 11-16 of two 28-px cells (11-16, 39-44), stretched 2x: 22-33 and 78-89
    for image in s.images:
        cols = np.nonzero(image.max(0) > 60)[0]
        assert list(cols) == [*range(22, 34), *range(78, 90)]
    assert (s.box[:, 0] == 22).all() and (s.box[:, 2] == 90).all()


def test_scale_shrinks_digits_and_keeps_the_box_on_the_ink():
    glyphs, labels = bar_glyphs()
    spec = SequenceSpec(max_len=3, scale=(0.5, 0.5), jitter=0, gap=(2, 2))
    s = compose(glyphs, labels, spec, 50, np.random.default_rng(1))
    for image, (x0, y0, x1, y1) in zip(s.images, s.box, strict=True):
        ys, xs = np.nonzero(image)
        assert ys.max() - ys.min() + 1 == 10  # a 20-px bar at half size
        assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1


def test_edge_puts_numbers_against_an_edge_and_wide_gaps_are_wide():
    glyphs, labels = bar_glyphs()
    s = compose(glyphs, labels, layout_spec(BASE, {"edge": 1.0}), 200, np.random.default_rng(2))
    assert ((s.box[:, 0] == 0) | (s.box[:, 2] == 112)).all()
    assert (s.box[:, 0] == 0).any() and (s.box[:, 2] == 112).any()
    spec = layout_spec(BASE, {"gap": [15, 20], "min_len": 2, "max_len": 3})
    s = compose(glyphs, labels, spec, 100, np.random.default_rng(3))
    for image in s.images:
        ink = np.nonzero(image.max(0))[0]
        gaps = np.diff(ink)[np.diff(ink) > 1] - 1
        assert len(gaps) and (gaps >= 15).all() and (gaps <= 20).all()


def test_rotation_and_noise_keep_labels_and_boxes():
    glyphs, labels = bar_glyphs()
    spec = layout_spec(BASE, {"rotate": 8, "shear": 15, "noise": 0})
    s = compose(glyphs, labels, spec, 100, np.random.default_rng(4))
    for image, (x0, y0, x1, y1) in zip(s.images, s.box, strict=True):
        ys, xs = np.nonzero(image > 0)
        assert xs.min() >= x0 - 1 and xs.max() < x1 + 1 and ys.min() >= y0 - 1 and ys.max() < y1 + 1
    noisy = compose(glyphs, labels, layout_spec(BASE, {"noise": 30}), 20, np.random.default_rng(5))
    assert (noisy.images[:, :3, :] > 0).mean() > 0.3  # noise everywhere, not just on the ink


def test_mixture_draws_every_family_by_weight():
    glyphs, labels = bar_glyphs()
    a = layout_spec(BASE, {"gap": [1, 1], "min_len": 1, "max_len": 1})
    b = layout_spec(BASE, {"gap": [1, 1], "min_len": 2, "max_len": 2})
    s = compose_mixture(glyphs, labels, [(a, 1.0), (b, 3.0)], 4000, np.random.default_rng(6))
    share = (s.length == 2).mean()
    assert 0.72 < share < 0.78 and s.images.shape == (4000, 28, 112)
    assert s.length[:50].std() > 0  # shuffled together, not one family after the other


def test_bad_layouts_and_suites_name_their_key():
    with pytest.raises(ValueError, match="layout keys \\['gapp'\\]"):
        layout_spec(BASE, {"gapp": [1, 2]})
    with pytest.raises(ValueError, match="eval.broken: missing key 'seed'"):
        suites.from_config("broken", {"n": 10}, BASE)
    with pytest.raises(ValueError, match="eval.too_long: max_len=6"):
        suites.from_config("too_long", {"n": 10, "seed": 1, "max_len": 6}, BASE)
    with pytest.raises(ValueError, match="scale=\\[0.0, 1.0\\]"):
        SequenceSpec(scale=(0.0, 1.0))


def test_suites_use_only_test_digits_and_are_logged_by_a_training_run(tmp_path):
    """Train digits are 50s, validation 150s, test 250s: suites without interpolation show 250s
    only; a short run logs suite/<name>/... metrics to MLflow and prints the suites table."""
    from mlflow.tracking import MlflowClient

    from digitrec.data.mnist import MNIST_FILES, write_idx
    from digitrec.datamodules import SequenceDataModule
    from digitrec.evaluation.scoring import suite_base
    from digitrec.training.train import train

    def bars(n, value):
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 5:23, 10:16] = value
        return images

    arrays = {
        "train_images": np.concatenate([bars(300, 50), bars(100, 150)]),
        "train_labels": np.arange(400, dtype=np.uint8) % 10,
        "test_images": bars(80, 250),
        "test_labels": np.arange(80, dtype=np.uint8) % 10,
    }
    for key, spec in MNIST_FILES.items():
        write_idx(tmp_path / "data" / "mnist" / f"{spec.name}.gz", arrays[key])
    dm = SequenceDataModule(str(tmp_path / "data"), val_glyphs=100, verify=False)
    test = dm.load_glyphs()
    for name in ("fixed_pitch", "touching", "wide_gaps", "shifted"):
        s = suites.load(name, suite_base(dm.spec)).build(test["test_images"], test["test_labels"])
        placed = s.length <= 4 if name == "fixed_pitch" else slice(None)  # 5 cells are resized
        assert set(np.unique(s.images[placed])) == {0, 250}, name

    overrides = small_overrides(tmp_path, tmp_path / "data") + [
        "trainer.max_epochs=1",
        "eval=[touching,fixed_pitch]",
        "eval.touching.n=40",
        "eval.fixed_pitch.n=48",
    ]
    metrics = train(compose_cfg(overrides, tmp_path))
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("mnist_seq").experiment_id])
    for name, n in (("touching", 40), ("fixed_pitch", 48)):
        for key in (
            "sequence_accuracy",
            "digit_accuracy",
            "length_accuracy",
            "n",
            "sequence_accuracy_len2",
            "sequence_accuracy_len5",
        ):
            assert f"suite/{name}/{key}" in run.data.metrics, (name, key)
            assert run.data.metrics[f"suite/{name}/{key}"] == pytest.approx(
                metrics[f"suite/{name}/{key}"]
            )
        assert run.data.metrics[f"suite/{name}/n"] == n
    assert 0 <= metrics["suite/touching/sequence_accuracy"] <= 1


@pytest.mark.realdata
def test_fixed_pitch_cells_are_real_mnist_test_digits_never_training_ones(real_data_dir):
    """On real MNIST: every cell of a placed fixed_pitch number is byte for byte an MNIST test
    image with that label, and none is an image of the training or validation pool."""
    from digitrec.data.mnist import load_mnist

    data = load_mnist(real_data_dir, download=False)
    test = {
        im.tobytes(): int(y) for im, y in zip(data["test_images"], data["test_labels"], strict=True)
    }
    train = {im.tobytes() for im in data["train_images"]}
    s = suite("fixed_pitch").build(data["test_images"], data["test_labels"])
    checked = 0
    for image, n, digits in zip(s.images[:400], s.length[:400], s.digits[:400], strict=True):
        if n > 4:  # 5 cells (140 px) are resized to the canvas
            continue
        starts = [
            x
            for x in range(112 - 28 * n + 1)
            if all(image[:, x + 28 * i : x + 28 * (i + 1)].tobytes() in test for i in range(n))
        ]
        assert starts, digits
        cells = [
            image[:, starts[0] + 28 * i : starts[0] + 28 * (i + 1)].tobytes() for i in range(n)
        ]
        assert [test[c] for c in cells] == list(digits[:n])
        assert not any(c in train for c in cells)
        checked += 1
    assert checked > 250
