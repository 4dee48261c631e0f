"""Recurrent building blocks: padding-correct encoders, the Elman cell, shapes."""

import pytest
import torch

from ursa.networks import (
    RecurrentConfig,
    RecurrentEncoder,
    RecurrentStack,
    SequenceAutoencoderNet,
    last_valid,
    make_rnn,
    masked_mse,
    reverse_padded,
)


def test_reverse_padded_reverses_within_length_and_is_self_inverse():
    x = torch.arange(10.0).view(2, 5, 1)
    lengths = torch.tensor([3, 5])
    out = reverse_padded(x, lengths)
    assert out[0, :, 0].tolist() == [2, 1, 0, 3, 4]
    assert out[1, :, 0].tolist() == [9, 8, 7, 6, 5]
    assert torch.equal(reverse_padded(out, lengths), x)


def test_last_valid():
    x = torch.arange(10.0).view(2, 5, 1)
    assert last_valid(x, torch.tensor([2, 5]))[:, 0].tolist() == [1, 9]


def test_elman_cell_matches_its_formula():
    torch.manual_seed(0)
    rnn = make_rnn("rnn", 3, 4)
    x = torch.randn(2, 6, 3)
    out, _ = rnn(x)
    h = torch.zeros(2, 4)
    for t in range(6):
        h = torch.tanh(x[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0)
        torch.testing.assert_close(out[:, t], h)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_summary_state_ignores_padding(cell, bidirectional, num_layers):
    """The summary of a sequence is the same alone and padded inside a batch."""
    torch.manual_seed(0)
    config = RecurrentConfig(input_size=2, hidden_size=5, num_layers=num_layers, cell=cell,
                             bidirectional=bidirectional)
    stack = RecurrentStack(config).eval()
    short = torch.randn(1, 4, 2)
    long = torch.randn(1, 9, 2)
    batch = torch.cat([torch.cat([short, torch.full((1, 5, 2), 7.0)], dim=1), long])
    _, last_batch = stack(batch, torch.tensor([4, 9]))
    _, last_alone = stack(short, torch.tensor([4]))
    assert last_batch.shape == (2, config.output_size)
    torch.testing.assert_close(last_batch[0], last_alone[0])


def test_bidirectional_backward_direction_reads_whole_sequence():
    torch.manual_seed(0)
    stack = RecurrentStack(RecurrentConfig(input_size=1, hidden_size=3, bidirectional=True)).eval()
    x = torch.randn(1, 6, 1)
    _, base = stack(x, torch.tensor([6]))
    x2 = x.clone()
    x2[0, 5] += 1.0  # change the last step: the backward summary must change
    _, changed = stack(x2, torch.tensor([6]))
    assert not torch.allclose(base[0, 3:], changed[0, 3:])


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_autoencoder_net_shapes(cell):
    net = SequenceAutoencoderNet(RecurrentConfig(input_size=3, hidden_size=6, num_layers=2, cell=cell), 4)
    x = torch.randn(5, 7, 3)
    recon, z = net(x, torch.full((5,), 7))
    assert recon.shape == (5, 7, 3) and z.shape == (5, 4)
    assert RecurrentEncoder(RecurrentConfig(input_size=3), 2)(x, torch.full((5,), 7)).shape == (5, 2)


def test_masked_mse_ignores_padding():
    target = torch.zeros(2, 4, 1)
    prediction = torch.zeros(2, 4, 1)
    prediction[0, 2:] = 100.0  # only padding is wrong
    assert masked_mse(prediction, target, torch.tensor([2, 4])).item() == 0.0
    prediction[1, 0] = 2.0
    assert masked_mse(prediction, target, torch.tensor([2, 4])).item() == pytest.approx(4.0 / 6)


def test_unknown_cell():
    with pytest.raises(ValueError, match="cell must be one of"):
        RecurrentConfig(input_size=1, cell="transformer")


# ----------------------------------------------------------------- hybrid encoders
@pytest.mark.parametrize("kind", ["conv-rnn", "rnn-attention", "conv-rnn-attention"])
def test_hybrid_encoder_code_ignores_padding(kind):
    """A sequence's code is the same alone and in a padded batch with longer sequences."""
    torch.manual_seed(0)
    encoder = RecurrentEncoder(RecurrentConfig(input_size=2, hidden_size=6, bidirectional=True),
                               3, summary="mean", kind=kind).eval()
    x = torch.randn(3, 23, 2)
    lengths = torch.tensor([23, 9, 14])
    batch = encoder(x * 1, lengths)
    for i in range(3):
        n = int(lengths[i])
        alone = encoder(x[i:i + 1, :n], lengths[i:i + 1])
        torch.testing.assert_close(batch[i:i + 1], alone, rtol=1e-5, atol=1e-6)
    garbage = x.clone()
    garbage[1, 9:] = 1e3  # what lies after an end is never read
    torch.testing.assert_close(encoder(garbage, lengths), batch, rtol=1e-5, atol=1e-6)


def test_conv_front_end_shortens_by_its_stride_and_matches_conv1d():
    from ursa.networks import ConvFrontEnd

    torch.manual_seed(0)
    front = ConvFrontEnd(2, 5)
    assert front.stride == 4
    x = torch.randn(2, 17, 2)
    out, lengths = front(x, torch.tensor([17, 6]))
    assert out.shape == (2, 5, 5) and lengths.tolist() == [5, 2]
    assert torch.all(out[1, 2:] == 0)
    # The first layer is a 1-D convolution of width 5, stride 2, zero padding 2.
    layer = front.layers[0]
    conv = torch.nn.Conv1d(2, 5, 5, stride=2, padding=2)
    with torch.no_grad():
        conv.weight.copy_(layer.weight.view(5, 2, 5))
        conv.bias.copy_(layer.bias)
    first = torch.nn.functional.gelu(conv(x[:1].transpose(1, 2))).transpose(1, 2)
    windows = torch.nn.functional.pad(x[:1], (0, 0, 2, 2)).unfold(1, 5, 2)
    ours = torch.nn.functional.gelu(layer(windows.reshape(1, windows.size(1), -1)))
    torch.testing.assert_close(ours, first)


def test_attention_weights_sum_to_one_over_valid_steps():
    torch.manual_seed(0)
    encoder = RecurrentEncoder(RecurrentConfig(input_size=1, hidden_size=4), 2,
                               kind="conv-rnn-attention")
    weights = encoder.attention_weights(torch.randn(2, 20, 1), torch.tensor([20, 7]))
    assert weights.shape == (2, 5)
    torch.testing.assert_close(weights.sum(1), torch.ones(2))
    assert torch.all(weights[1, 2:] == 0) and torch.all(weights[1, :2] > 0)
    with pytest.raises(ValueError, match="no attention weights"):
        RecurrentEncoder(RecurrentConfig(input_size=1), 2).attention_weights(
            torch.randn(1, 4, 1), torch.tensor([4]))


def test_strided_decoder_rebuilds_every_step_and_learns():
    """A conv encoder's decoder emits four steps per recurrent step, and the pair trains."""
    torch.manual_seed(0)
    net = SequenceAutoencoderNet(RecurrentConfig(input_size=1, hidden_size=16), 4, kind="conv-rnn")
    assert net.decoder.stride == 4
    t = torch.linspace(0, 6, 30)
    x = torch.stack([torch.sin(t + p) for p in torch.linspace(0, 3, 16)]).unsqueeze(-1)
    lengths = torch.full((16,), 30)
    assert net(x, lengths)[0].shape == (16, 30, 1)
    optimiser = torch.optim.Adam(net.parameters(), 1e-2)
    with torch.no_grad():
        first = float(masked_mse(net(x, lengths)[0], x, lengths))
    for _ in range(150):
        loss = masked_mse(net(x, lengths)[0], x, lengths)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert float(loss) < 0.2 * first


def test_unknown_encoder_kind():
    with pytest.raises(ValueError, match="encoder must be one of"):
        RecurrentEncoder(RecurrentConfig(input_size=1), 2, kind="transformer")
