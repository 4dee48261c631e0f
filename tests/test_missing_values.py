"""Missing values (NaN inside a sequence): left out of statistics, pooling and losses, read as
the training mean by the encoder, in the estimators that accept them."""

import numpy as np
import pytest
import torch

import ursa
from conftest import DEVICE, make_sines
from ursa.data import SequenceScaler, as_sequences
from ursa.networks import masked_mse, step_errors
from ursa.networks.clustering import temporal_pool


def _with_gaps(X, rng, share=0.2, longest=6):
    """A copy of (n, T) ``X`` with gaps of 1 to ``longest`` steps covering about ``share``."""
    X = X.copy()
    n, T = X.shape
    for i in range(n):
        covered = 0
        while covered < share * T:
            start, size = int(rng.integers(1, T - longest)), int(rng.integers(1, longest + 1))
            X[i, start:start + size] = np.nan
            covered += size
    return X


def test_padding_and_missing_values_are_told_apart():
    X = make_sines(3, 8, 1)[:, :, 0]
    X[0, 2:4] = np.nan  # a gap
    X[1, 6:] = np.nan  # the end: padding
    seqs = as_sequences(X, allow_nan=True)
    assert seqs.lengths.tolist() == [8, 6, 8]
    assert np.isnan(seqs.values[0, 2:4, 0]).all() and seqs.missing
    assert not np.isnan(seqs.values[1]).any()  # padding is not missing
    assert not as_sequences(X[1:]).missing


def test_losses_leave_missing_values_out():
    torch.manual_seed(0)
    prediction, target = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    target[0, 1, 2] = float("nan")
    target[1, 3] = float("nan")  # a whole step
    lengths = torch.tensor([5, 4])
    observed = ~torch.isnan(target)
    observed[1, 4:] = False  # padding
    expected_steps = torch.stack([
        ((prediction - target)[b, t][observed[b, t]] ** 2).mean() if observed[b, t].any()
        else torch.tensor(0.0) for b in range(2) for t in range(5)]).view(2, 5)
    torch.testing.assert_close(step_errors(prediction, target, lengths), expected_steps)
    counted = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.float32)
    torch.testing.assert_close(masked_mse(prediction, target, lengths),
                               (expected_steps * counted).sum() / counted.sum())
    prediction.requires_grad_(True)
    masked_mse(prediction, target, lengths).backward()
    assert torch.isfinite(prediction.grad).all() and prediction.grad[1, 3].abs().sum() == 0


def test_pooling_summarises_the_observed_values_of_each_window():
    x = torch.tensor([[1.0, float("nan"), 3.0, float("nan"), float("nan"), 6.0]]).unsqueeze(-1)
    pooled, lengths = temporal_pool(x, torch.tensor([5]), 2, "mean_std")
    assert lengths.tolist() == [3]
    torch.testing.assert_close(pooled[0, 0], torch.tensor([1.0, 0.0]))  # one observed value
    torch.testing.assert_close(pooled[0, 1], torch.tensor([3.0, 0.0]))
    assert torch.isnan(pooled[0, 2]).all()  # nothing observed before the end (step 5 is padding)
    complete = torch.tensor([[1.0, 2.0, 3.0, 4.0]]).unsqueeze(-1)
    assert not torch.isnan(temporal_pool(complete, torch.tensor([3]), 2)[0]).any()


def test_scaler_statistics_come_from_the_observed_values():
    X = np.array([[1.0, np.nan, 3.0, 5.0], [7.0, 9.0, np.nan, np.nan]])
    seqs = as_sequences(X, allow_nan=True)
    scaler = SequenceScaler("standard").fit(seqs)
    observed = np.array([1.0, 3.0, 5.0, 7.0, 9.0])
    np.testing.assert_allclose(scaler.offset_, [observed.mean()], rtol=1e-6)
    np.testing.assert_allclose(scaler.scale_, [observed.std()], rtol=1e-6)
    assert np.isnan(scaler.transform(seqs).values[0, 1, 0])
    X3 = np.dstack([X, np.full_like(X, np.nan)])
    X3[:, 0, 1] = np.nan
    with pytest.raises(ValueError, match=r"feature 1 is missing \(NaN\) at every step"):
        SequenceScaler("standard").fit(as_sequences(X3, allow_nan=True))


def test_a_missing_value_reads_as_the_training_mean():
    X = make_sines(24, 12, 2)
    model = ursa.SequenceAutoencoder(hidden_size=8, latent_dim=3, epochs=2, random_state=0,
                                     verbose=False, device=DEVICE).fit(X)
    gappy = X.copy()
    gappy[0, 3, 1] = np.nan
    gappy[1, 5:7] = np.nan
    filled = X.copy()
    filled[0, 3, 1] = model.scaler_.offset_[1]
    filled[1, 5:7] = model.scaler_.offset_
    np.testing.assert_allclose(model.transform(gappy), model.transform(filled), atol=1e-5)


def test_autoencoder_fills_gaps_better_than_the_mean():
    rng = np.random.default_rng(0)
    t = np.arange(48)
    full = np.stack([a * np.sin(0.25 * t) + b for a, b in rng.uniform(0.5, 2, (80, 2))])
    gappy = _with_gaps(full, rng)
    model = ursa.SequenceAutoencoder(hidden_size=16, latent_dim=4, epochs=80, random_state=0,
                                     verbose=False, device=DEVICE).fit(gappy)
    rebuilt = model.reconstruct(gappy)
    gaps = np.isnan(gappy)
    assert np.isfinite(rebuilt).all()
    imputation = np.mean((rebuilt[gaps] - full[gaps]) ** 2)
    assert imputation < 0.1 * np.mean((np.nanmean(gappy) - full[gaps]) ** 2)


@pytest.mark.parametrize("differences", [False, True])
def test_clusterer_clusters_series_with_gaps(differences):
    rng = np.random.default_rng(1)
    t = np.arange(64)
    X = np.stack([np.sin(f * t + p) + 0.1 * rng.normal(size=64)
                  for f in (0.15, 0.5) for p in rng.uniform(0, 6, 20)])
    y = np.repeat([0, 1], 20)
    gappy = _with_gaps(X, rng)
    model = ursa.RecurrentClusterer(n_clusters=2, hidden_size=16, epochs=100, clustering_epochs=10,
                                    differences=differences, random_state=0, verbose=False,
                                    device=DEVICE).fit(gappy)
    assert model.differences_ is differences
    assert np.isfinite(model.smoothness_) and np.isfinite(model.transform(gappy)).all()
    assert ursa.metrics.adjusted_rand_score(y, model.labels_) > 0.9
    np.testing.assert_array_equal(model.predict(gappy), model.labels_)
