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
