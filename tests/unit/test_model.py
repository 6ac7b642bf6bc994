import pytest
import torch
from conftest import compose_cfg
from hydra.utils import instantiate

from digitrec.models import DigitNet
from digitrec.models.trunk import ConvTrunk, LocallyConnected2d, Maxout, SubtractiveNorm
from digitrec.tasks import DigitReader


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


SMALL_GOODFELLOW = dict(
    depth=4,
    widths=[8, 8, 16, 16],
    kernel_size=5,
    first_stride=1,
    pool=[2, 1],
    pool_padding="same",
    min_pool_size=1,
    maxout=3,
    subtractive_norm=True,
    conv_dropout=0.2,
    locally_connected=16,
    fc=[32, 32],
    fc_dropout=0.5,
)
VARIANTS = {
    "separate": dict(head="separate"),
    "shared": dict(head="shared"),
    "rnn": dict(head="rnn"),
    "rnn-attention": dict(head="rnn", attention=True),
    "goodfellow-bn": dict(SMALL_GOODFELLOW, batch_norm=True),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_eval_mode_single_image_equals_batch(variant):
    """Batch norm and dropout in eval mode: an image reads the same alone and in a batch of 64."""
    torch.manual_seed(0)
    kwargs = {"depth": 3, "widths": [8, 16, 16], **VARIANTS[variant]}
    reader = DigitReader(**kwargs)
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


def test_label_smoothing_softens_training_targets_only():
    length, digits = torch.tensor([2]), torch.tensor([[3, 7, -1, -1, -1]])
    len_logits = torch.full((1, 7), -10.0).index_fill(1, torch.tensor([2]), 10.0)
    dig_logits = torch.full((1, 5, 10), -10.0)
    dig_logits[0, 0, 3] = dig_logits[0, 1, 7] = 10.0  # confidently right
    plain = DigitReader(depth=1, widths=[4])
    smooth = DigitReader(depth=1, widths=[4], label_smoothing=0.1)
    args = (len_logits, dig_logits, length, digits)
    assert smooth.loss(*args) > 1.0 > 1e-3 > plain.loss(*args)  # training: confident is penalized
    smooth.eval()
    assert smooth.loss(*args) == plain.loss(*args)  # evaluation losses stay comparable
    with pytest.raises(ValueError, match="model.label_smoothing=1"):
        DigitReader(depth=1, widths=[4], label_smoothing=1)


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


@pytest.mark.parametrize("variant", ["separate", "shared", "rnn", "rnn-attention"])
@pytest.mark.parametrize("loss", ["mask", "blank"])
def test_every_head_gives_the_same_outputs_and_learns(variant, loss):
    torch.manual_seed(0)
    reader = DigitReader(depth=2, widths=[8, 16], loss=loss, fc=[32], **VARIANTS[variant])
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


def test_rnn_attention_weights_are_distributions_over_columns():
    torch.manual_seed(0)
    net = DigitNet(
        depth=2, widths=[8, 16], head="rnn", attention=True, context="gru", context_size=8, fc=[]
    ).eval()
    with torch.no_grad():
        net(torch.rand(3, 1, 28, 112))
    att = net.head.last_attention
    assert att.shape == (3, 6, net.trunk.map_shape[2])  # max_len + 1 steps over the W columns
    torch.testing.assert_close(att.sum(-1), torch.ones(3, 6))
    with pytest.raises(ValueError, match="model.attention=true needs model.head=rnn"):
        DigitNet(head="separate", attention=True)


def test_goodfellow_on_54x54_rgb_has_the_papers_layers_and_parameter_count(tmp_path):
    """model=goodfellow as composed by Hydra: 8 conv + 1 locally connected + 2 fully connected
    layers; parameters counted by hand from the paper's description."""
    cfg = compose_cfg(["model=goodfellow", "data.height=54", "data.width=54"], tmp_path)
    cfg.model.in_channels = 3  # SVHN crops are RGB
    net = instantiate(cfg.model).net
    trunk = net.trunk
    convs = [m for m in trunk.modules() if isinstance(m, torch.nn.Conv2d)]
    locals_ = [m for m in trunk.modules() if isinstance(m, LocallyConnected2d)]
    dense = [m for m in trunk.fc if isinstance(m, torch.nn.Linear)]
    assert (len(convs), len(locals_), len(dense)) == (8, 1, 2)
    assert [c.out_channels for c in convs] == [48 * 3, 64, 128, 160, 192, 192, 192, 192]
    assert all(c.kernel_size == (5, 5) for c in convs)
    assert sum(isinstance(m, Maxout) for m in trunk.modules()) == 1
    assert sum(isinstance(m, SubtractiveNorm) for m in trunk.modules()) == 8
    # 54 → 27 → 27 → 14 → 14 → 7 → 7 → 4 → 4 with pooling strides 2, 1, 2, 1, ...
    assert trunk.map_shape == (192, 4, 4)

    def conv(c_in, c_out):  # 5x5 kernels + biases (no batch norm in the paper's network)
        return c_in * 25 * c_out + c_out

    by_hand = (
        conv(3, 48 * 3)  # maxout: 3 pieces per unit
        + conv(48, 64)
        + conv(64, 128)
        + conv(128, 160)
        + conv(160, 192)
        + 3 * conv(192, 192)
        + 4 * 4 * (192 * 9 * 192 + 192)  # locally connected: 3x3 windows, own weights per position
        + (192 * 4 * 4) * 3072
        + 3072
        + 3072 * 3072
        + 3072  # two fully connected layers
        + 3072 * 7
        + 7  # length softmax: 0..5 and ">5"
        + 5 * (3072 * 10 + 10)  # five digit softmaxes
    )
    # 4,338,464 conv + 5,311,488 locally connected + 18,880,512 dense + 175,161 softmaxes
    assert by_hand == 28_705_625
    assert sum(p.numel() for p in net.parameters()) == by_hand
    length, digits = net(torch.rand(2, 3, 54, 54))
    assert length.shape == (2, 7) and digits.shape == (2, 5, 10)
    # batch norm on adds a scale and a shift per conv channel (the maxout layer's 144 included)
    cfg.model.batch_norm = True
    with_bn = sum(p.numel() for p in instantiate(cfg.model).net.parameters())
    channels = 144 + 64 + 128 + 160 + 4 * 192
    assert with_bn == by_hand - channels + 2 * channels  # biases dropped, scale + shift added


def test_pooling_strides_and_same_padding():
    t = ConvTrunk(
        in_channels=1,
        height=28,
        width=112,
        depth=4,
        widths=[4],
        kernel_size=5,
        pool=[2, 1],
        pool_padding="same",
        min_pool_size=1,
        fc=[],
    )
    assert t.map_shape == (4, 7, 28)
    assert t.forward_map(torch.rand(1, 1, 28, 112)).shape == (1, 4, 7, 28)
    with pytest.raises(ValueError, match="model.pool entry -1"):
        ConvTrunk(pool=[-1])
    with pytest.raises(ValueError, match="model.pool_padding='full'"):
        ConvTrunk(pool_padding="full")


def test_cost_counts_parameters_and_multiply_adds():
    net = DigitNet(
        depth=1,
        widths=[4],
        first_kernel_size=3,
        first_stride=1,
        pool=[False],
        batch_norm=False,
        fc=[],
        context=None,
        height=8,
        width=8,
        max_len=2,
    )
    cost = net.cost()
    conv_macs = 8 * 8 * 4 * 9  # every output unit: a 3x3 window of 1 channel
    heads = 4 * 8 * 8 * (4 + 2 * 10)  # length (max_len + 2 = 4 classes) + 2 digit softmaxes
    assert cost["macs_per_image"] == conv_macs + heads
    assert cost["parameters"] == (9 * 4 + 4) + (256 * 4 + 4) + (256 * 20 + 20)


def test_fuse_conv_bn_keeps_outputs_and_leaves_the_original_alone():
    from digitrec.models.fuse import fuse_conv_bn

    torch.manual_seed(0)
    net = DigitNet(in_channels=3, height=54, width=54, max_len=5, depth=3, widths=[8, 16])
    for m in net.modules():  # non-trivial running statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 2)
    net.eval()
    fused = fuse_conv_bn(net)
    x = torch.rand(4, 3, 54, 54)
    for a, b in zip(net(x), fused(x), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 3
