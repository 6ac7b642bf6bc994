import numpy as np
import pytest
import torch
from helpers import bar_glyphs

from digitrec.data.sequences import PAD, SequenceSpec, compose, split_pool


def read_bars(image: np.ndarray, base: int = 100) -> list[int]:
    """Digits left to right: runs of one nonzero column value."""
    cols = image.max(0)
    out, prev = [], 0
    for v in cols:
        if v and v != prev:
            out.append((int(v) - base) // 10)
        prev = v
    return out


def test_labels_agree_with_what_was_drawn():
    glyphs, labels = bar_glyphs()
    spec = SequenceSpec(max_len=5, width=112, gap=(1, 4))
    s = compose(glyphs, labels, spec, 500, np.random.default_rng(0))
    for image, n, digits in zip(s.images, s.length, s.digits, strict=True):
        assert read_bars(image) == list(digits[:n])
        assert (digits[n:] == PAD).all()


def test_box_contains_all_ink_and_nothing_outside():
    glyphs, labels = bar_glyphs()
    s = compose(glyphs, labels, SequenceSpec(), 300, np.random.default_rng(1))
    for image, (x0, y0, x1, y1) in zip(s.images, s.box, strict=True):
        ys, xs = np.nonzero(image)
        assert xs.min() == x0 and xs.max() + 1 == x1
        assert ys.min() == y0 and ys.max() + 1 == y1


def test_deterministic_for_a_seed():
    glyphs, labels = bar_glyphs()
    spec = SequenceSpec()
    a = compose(glyphs, labels, spec, 64, np.random.default_rng(7))
    b = compose(glyphs, labels, spec, 64, np.random.default_rng(7))
    c = compose(glyphs, labels, spec, 64, np.random.default_rng(8))
    assert np.array_equal(a.images, b.images) and np.array_equal(a.digits, b.digits)
    assert not np.array_equal(a.images, c.images)


@pytest.mark.parametrize("min_len,max_len", [(1, 5), (2, 3), (1, 1), (3, 7)])
def test_lengths_within_bounds_and_all_used(min_len, max_len):
    glyphs, labels = bar_glyphs()
    spec = SequenceSpec(min_len=min_len, max_len=max_len, width=28 * max_len)
    s = compose(glyphs, labels, spec, 2000, np.random.default_rng(2))
    assert s.length.min() == min_len and s.length.max() == max_len
    assert ((s.digits >= 0).sum(1) == s.length).all()
    assert s.images.shape == (2000, spec.height, spec.width)


def test_length_distribution_follows_config():
    glyphs, labels = bar_glyphs()
    spec = SequenceSpec(max_len=3, length_probs=[0.0, 1.0, 3.0])
    s = compose(glyphs, labels, spec, 4000, np.random.default_rng(3))
    counts = np.bincount(s.length, minlength=4)
    assert counts[1] == 0
    assert 0.70 < counts[3] / (counts[2] + counts[3]) < 0.80


def test_bad_length_probs_is_a_clear_error():
    with pytest.raises(ValueError, match="length_probs needs 5"):
        SequenceSpec(length_probs=[1, 2])


def test_overlap_allowed_by_config():
    glyphs, labels = bar_glyphs()
    spec = SequenceSpec(max_len=2, min_len=2, gap=(-3, -3), jitter=0)
    s = compose(glyphs, labels, spec, 50, np.random.default_rng(4))
    widths = s.box[:, 2] - s.box[:, 0]
    assert (widths == 6 + 6 - 3).all()  # two 6-px bars overlapping by 3 px


def test_long_numbers_never_leave_the_canvas():
    glyphs, labels = bar_glyphs()
    spec = SequenceSpec(max_len=5, min_len=5, width=40, gap=(3, 3))  # 5*6 + 4*3 = 42 > 40
    s = compose(glyphs, labels, spec, 100, np.random.default_rng(5))
    assert (s.box[:, 0] >= 0).all() and (s.box[:, 2] <= 40).all()
    for image, digits in zip(s.images, s.digits, strict=True):
        assert read_bars(image) == list(digits)


def test_transform_is_applied_per_glyph():
    glyphs, labels = bar_glyphs()
    calls = []

    def transform(stack):
        calls.append(len(stack))
        return np.zeros_like(stack)

    s = compose(glyphs, labels, SequenceSpec(), 20, np.random.default_rng(6), transform, 4)
    assert sum(calls) == s.length.sum() and max(calls) == 4 and s.images.max() == 0


def test_split_pool_is_disjoint():
    images = np.arange(100, dtype=np.uint8).reshape(100, 1, 1).repeat(28, 1).repeat(28, 2)
    labels = np.zeros(100, np.uint8)
    (tr, _), (va, _) = split_pool(images, labels, 10)
    assert len(tr) == 90 and len(va) == 10
    assert not set(tr[:, 0, 0]) & set(va[:, 0, 0])


def test_datamodule_draws_each_split_from_its_own_pool(tmp_path):
    """Train glyphs are 50s, validation glyphs 150s, test glyphs 250s: a canvas shows its pool."""
    from digitrec.data.mnist import MNIST_FILES, write_idx
    from digitrec.datamodules import SequenceDataModule

    def bars(n, value):
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 5:23, 10:16] = value
        return images

    train = np.concatenate([bars(300, 50), bars(100, 150)])  # the last 100 validate
    arrays = {
        "train_images": train,
        "train_labels": np.arange(400, dtype=np.uint8) % 10,
        "test_images": bars(80, 250),
        "test_labels": np.arange(80, dtype=np.uint8) % 10,
    }
    for key, spec in MNIST_FILES.items():
        write_idx(tmp_path / "mnist" / f"{spec.name}.gz", arrays[key])
    dm = SequenceDataModule(
        str(tmp_path),
        val_glyphs=100,
        val_size=200,
        test_size=200,
        train_size=256,
        batch_size=64,
        verify=False,
    )
    dm.setup()
    assert set(np.unique(dm.val_set.images)) == {0, 150}
    assert set(np.unique(dm.test_set.images)) == {0, 250}
    for batch in dm.train_dataloader():
        assert set(np.unique(batch["image"].numpy())) == {0, 50}
    assert len(dm.test_set) == 200 and (dm.test_set.length >= 1).all()


def test_augmented_training_stream_is_reproducible_for_a_seed(fake_data_dir):
    """albumentations has its own generator: it must follow data.seed, not OS entropy."""
    import albumentations as A

    from digitrec.datamodules import SequenceDataModule

    def first_batch(seed):
        pipeline = A.Compose([A.Affine(rotate=(-30, 30), p=1.0), A.ElasticTransform(p=1.0)])
        dm = SequenceDataModule(
            str(fake_data_dir),
            val_glyphs=100,
            val_size=50,
            test_size=50,
            train_size=64,
            batch_size=32,
            verify=False,
            seed=seed,
            augmentation=pipeline,
        )
        dm.setup()
        return next(iter(dm.train_dataloader()))["image"]

    assert torch.equal(first_batch(3), first_batch(3))
    assert not torch.equal(first_batch(3), first_batch(4))
