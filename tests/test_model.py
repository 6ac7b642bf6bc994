import pytest
import torch

from digitrec.models import DigitNet
from digitrec.module import DigitReader


@pytest.mark.parametrize("depth", [1, 3, 5, 8])
def test_shapes_for_any_depth(depth):
    net = DigitNet(height=28, width=112, max_len=5, depth=depth, widths=[8, 16])
    length, digits = net(torch.rand(3, 1, 28, 112))
    assert length.shape == (3, 7) and digits.shape == (3, 5, 10)


def test_blank_adds_a_class_and_widths_repeat():
    net = DigitNet(max_len=4, blank=True, depth=4, widths=[8, 16])
    assert [b[0].out_channels for b in net.trunk.conv] == [8, 16, 16, 16]
    _, digits = net(torch.rand(2, 1, 28, 112))
    assert digits.shape == (2, 4, 11)


def test_bad_head_and_depth_are_clear_errors():
    with pytest.raises(ValueError, match="model.head='nope'"):
        DigitNet(head="nope")
    with pytest.raises(ValueError, match="model.depth=0"):
        DigitNet(depth=0)
    with pytest.raises(ValueError, match="model.loss='x'"):
        DigitReader(loss="x")


@pytest.mark.parametrize("head", ["separate", "shared", "rnn"])
def test_eval_mode_single_image_equals_batch(head):
    torch.manual_seed(0)
    reader = DigitReader(depth=3, widths=[8, 16, 16], head=head)
    # move batch-norm statistics away from their initial values so eval mode matters
    reader.train()
    with torch.no_grad():
        for _ in range(5):
            reader(torch.rand(32, 1, 28, 112) * 3)
    reader.eval()
    images = torch.randint(0, 256, (64, 1, 28, 112), dtype=torch.uint8)
    with torch.no_grad():
        batch_len, batch_dig = reader(images)
        one_len, one_dig = reader(images[5:6])
    torch.testing.assert_close(one_len[0], batch_len[5], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(one_dig[0], batch_dig[5], rtol=1e-4, atol=1e-4)


def test_loss_masks_absent_positions_or_trains_blank():
    torch.manual_seed(0)
    length = torch.tensor([1])
    digits = torch.tensor([[3, -1, -1, -1, -1]])
    for loss, classes in (("mask", 10), ("blank", 11)):
        reader = DigitReader(loss=loss, depth=1, widths=[4])
        len_logits = torch.zeros(1, 7, requires_grad=True)
        dig_logits = torch.zeros(1, 5, classes, requires_grad=True)
        reader.loss(len_logits, dig_logits, length, digits).backward()
        absent_grad = dig_logits.grad[0, 1:].abs().sum().item()
        assert (absent_grad == 0) == (loss == "mask")


@pytest.mark.parametrize("context", [None, "gru"])
def test_context_carries_information_across_the_whole_width(context):
    """The conv receptive field is local; the column GRU lets the rightmost column see the left edge."""
    torch.manual_seed(0)
    trunk = DigitNet(depth=3, widths=[4, 8, 8], fc=[], context=context, context_size=6).trunk.eval()
    c, h, w = trunk.map_shape
    assert trunk.num_features == (12 if context else c * h) * w
    x = torch.rand(1, 1, 28, 112)
    x2 = x.clone()
    x2[..., :8] = torch.rand(1, 1, 28, 8)  # change only the leftmost 8 pixel columns
    with torch.no_grad():
        last = [trunk(v).view(1, w, -1)[:, -1] for v in (x, x2)]
    assert (not torch.allclose(*last)) == (context == "gru")


def test_bad_context_is_a_clear_error():
    with pytest.raises(ValueError, match="model.context='lstm2'"):
        DigitNet(context="lstm2")


@pytest.mark.parametrize("head", ["separate", "shared", "rnn"])
@pytest.mark.parametrize("loss", ["mask", "blank"])
def test_every_head_gives_the_same_outputs_and_learns(head, loss):
    torch.manual_seed(0)
    reader = DigitReader(depth=2, widths=[8, 16], head=head, loss=loss, fc=[32])
    images = torch.randint(0, 256, (8, 1, 28, 112), dtype=torch.uint8)
    length = torch.tensor([1, 2, 3, 4, 5, 1, 2, 3])
    digits = torch.where(torch.arange(5) < length[:, None], torch.randint(0, 10, (8, 5)), -1)
    optimizer = torch.optim.Adam(reader.parameters(), 3e-3)
    losses = []
    for _ in range(30):
        out = reader(images, teacher=digits)
        assert out[0].shape == (8, 7) and out[1].shape == (8, 5, 10 + (loss == "blank"))
        loss_value = reader.loss(*out, length, digits)
        optimizer.zero_grad()
        loss_value.backward()
        optimizer.step()
        losses.append(loss_value.item())
    assert losses[-1] < 0.5 * losses[0]  # it fits 8 numbers


def test_rnn_head_length_is_a_distribution_and_teacher_forcing_matters():
    from digitrec.models.heads import RNNHead

    torch.manual_seed(0)
    head = RNNHead(16, max_len=4, num_classes=10, hidden=8)
    features = torch.randn(3, 16)
    length, digits = head(features)
    torch.testing.assert_close(length.exp().sum(1), torch.ones(3))
    teacher = torch.tensor([[1, 2, 3, 4], [5, 6, -1, -1], [7, -1, -1, -1]])
    forced_length, forced = head(features, teacher)
    torch.testing.assert_close(forced[:, 0], digits[:, 0])  # the first step sees only the start
    assert not torch.allclose(forced[:, 1:], digits[:, 1:])
