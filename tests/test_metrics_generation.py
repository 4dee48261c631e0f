"""Generation metrics: TimeGAN-protocol discriminative and predictive scores, 2-D embeddings."""

import numpy as np
import pytest
import torch

import ursa
from conftest import DEVICE
from ursa.metrics import (
    GenerationScore,
    discriminative_score,
    predictive_score,
    real_vs_synthetic_embedding,
)

# The post-hoc networks train where the suite's estimators do (URSA_TEST_DEVICE).
FAST = dict(n_repeats=2, iterations=250, batch_size=64, random_state=0, device=DEVICE)


@pytest.fixture(scope="module")
def real():
    return ursa.datasets.make_sines(160, n_timesteps=10, n_features=4, random_state=0)


@pytest.fixture(scope="module")
def noise(real):
    return np.random.default_rng(0).uniform(size=real.shape).astype(np.float32)


def test_discriminative_score_separates_noise_not_twins(real, noise):
    twin = ursa.datasets.make_sines(160, n_timesteps=10, n_features=4, random_state=1)
    same = discriminative_score(real, twin, **FAST)
    different = discriminative_score(real, noise, **FAST)
    assert isinstance(same, GenerationScore) and len(same.scores) == 2
    assert same.mean == pytest.approx(np.mean(same.scores))
    assert same.std == pytest.approx(np.std(same.scores))
    # The protocol's classifier is tiny (hidden = 4 // 2 = 2); with this short training it
    # already tells noise apart, and cannot tell two draws of the same generator apart.
    assert 0 <= same.mean < 0.12
    assert different.mean > 0.2 and different.mean > same.mean + 0.1
    assert all(0 <= s <= 0.5 for s in different.scores)


def test_predictive_score_rewards_the_real_dynamics(real, noise):
    on_real = predictive_score(real, real, **FAST)
    on_noise = predictive_score(real, noise, **FAST)
    assert on_real.mean < on_noise.mean
    assert 0 <= on_real.mean < 0.2


def test_scores_are_reproducible_and_leave_global_rng_alone(real, noise):
    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    a = discriminative_score(real, noise, n_repeats=1, iterations=20, random_state=3)
    assert torch.equal(torch.rand(2), expected)
    b = discriminative_score(real, noise, n_repeats=1, iterations=20, random_state=3)
    assert a.mean == b.mean
    p1 = predictive_score(real, noise, n_repeats=1, iterations=20, random_state=3)
    p2 = predictive_score(real, noise, n_repeats=1, iterations=20, random_state=3)
    assert p1.mean == p2.mean


def test_device_defaults_to_the_cpu_and_moves_the_networks(real, noise):
    short = dict(n_repeats=1, iterations=20, random_state=3)
    on_cpu = discriminative_score(real, noise, **short)
    assert discriminative_score(real, noise, device="cpu", **short).mean == on_cpu.mean
    assert discriminative_score(real, noise, device=torch.device("cpu"), **short).mean == on_cpu.mean
    p_cpu = predictive_score(real, noise, **short)
    if not torch.cuda.is_available():  # "auto" is the CPU here
        assert discriminative_score(real, noise, device="auto", **short).mean == on_cpu.mean
        assert predictive_score(real, noise, device="auto", **short).mean == p_cpu.mean
    if DEVICE != "cpu":  # on a GPU: repeatable there, and close to (not equal to) the CPU's
        a = predictive_score(real, noise, device=DEVICE, **short)
        assert predictive_score(real, noise, device=DEVICE, **short).mean == a.mean
        assert a.mean == pytest.approx(p_cpu.mean, abs=0.02)


def test_variable_length_and_univariate_inputs():
    rng = np.random.default_rng(0)
    real = [np.sin(np.arange(n) * 0.3)[:, None] for n in rng.integers(5, 12, size=30)]
    fake = [rng.uniform(size=(n, 1)) for n in rng.integers(5, 12, size=30)]
    d = discriminative_score(real, fake, n_repeats=1, iterations=20, random_state=0, device=DEVICE)
    p = predictive_score(real, fake, n_repeats=1, iterations=20, random_state=0, device=DEVICE)
    assert 0 <= d.mean <= 0.5 and np.isfinite(p.mean)


@pytest.mark.parametrize("call, error, pattern", [
    (lambda r: discriminative_score(r, r[:, :, :3]), ValueError, r"real has 4 features but synthetic has 3"),
    (lambda r: discriminative_score(r[:1], r), ValueError, r"real needs at least 2 sequences"),
    (lambda r: discriminative_score(r, r, n_repeats=0), ValueError, r"n_repeats must be an integer >= 1"),
    (lambda r: predictive_score(r, r, iterations=1.5), ValueError, r"iterations must be an integer"),
    (lambda r: predictive_score(r, r[:, :1]), ValueError, r"synthetic\[0\] has 1 step"),
    (lambda r: predictive_score(r, r, random_state="x"), ValueError, r"random_state must be"),
    (lambda r: discriminative_score(r, "fake.csv"), TypeError, r"got str"),
    (lambda r: discriminative_score(r, r, device="tpu"), ValueError,
     r"discriminative_score\(device='tpu'\): use None, 'auto', 'cpu'"),
    (lambda r: predictive_score(r, r, device="cuda:99"), ValueError,
     r"predictive_score\(device='cuda:99'\): (CUDA is not available|this machine has)"),
    (lambda r: predictive_score(r, r, device=3), ValueError, r"predictive_score\(device=3\)"),
    (lambda r: real_vs_synthetic_embedding(r, r, method="umap"), ValueError, r"'pca' or 'tsne'"),
    (lambda r: real_vs_synthetic_embedding(r, r[:, :5]), ValueError, r"real has 10 steps but synthetic has 5"),
])
def test_bad_arguments(real, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(real)


def test_pca_embedding(real, noise):
    real_2d, fake_2d = real_vs_synthetic_embedding(real, noise, method="pca", random_state=0)
    assert real_2d.shape == (160, 2) and fake_2d.shape == (160, 2)
    # PCA is fitted on the real rows: they are centred there
    np.testing.assert_allclose(real_2d.mean(axis=0), 0.0, atol=1e-6)
    assert np.abs(fake_2d.mean(axis=0)).max() > 0.01
    capped = real_vs_synthetic_embedding(real, noise, max_samples=50, random_state=0)
    assert capped[0].shape == (50, 2) and capped[1].shape == (50, 2)


def test_tsne_embedding(real, noise):
    real_2d, fake_2d = real_vs_synthetic_embedding(real[:40], noise[:30], method="tsne",
                                                   random_state=0)
    assert real_2d.shape == (40, 2) and fake_2d.shape == (30, 2)
    assert np.isfinite(real_2d).all() and np.isfinite(fake_2d).all()


def test_embedding_refuses_variable_lengths(real):
    ragged = [real[0], real[1][:5]]
    with pytest.raises(ValueError, match="crop them to a common length"):
        real_vs_synthetic_embedding(ragged, real)


def test_discriminative_hidden_size_defaults_to_the_protocol_and_widens_the_classifier(real, noise):
    short = dict(n_repeats=2, iterations=40, batch_size=32, random_state=5)
    protocol = discriminative_score(real, noise, **short)  # 4 features: the protocol's 2 units
    assert np.array_equal(discriminative_score(real, noise, hidden_size=2, **short).scores,
                          protocol.scores)
    wide = discriminative_score(real, noise, hidden_size=16, **short)
    assert not np.array_equal(wide.scores, protocol.scores)  # another network was trained
    assert wide.mean > 0.2  # and it still tells noise from sines
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises(ValueError, match="hidden_size must be an integer >= 1"):
            discriminative_score(real, noise, hidden_size=bad, **short)


def test_context_fid_ranks_a_shifted_generator_above_a_twin(real):
    from ursa.metrics import context_fid

    twin = ursa.datasets.make_sines(160, n_timesteps=10, n_features=4, random_state=1)
    shifted = np.clip(twin * 0.5 + 0.4, 0, 1).astype(np.float32)
    settings = dict(n_repeats=2, epochs=5, random_state=0, device=DEVICE, verbose=False)
    same, different = context_fid(real, twin, **settings), context_fid(real, shifted, **settings)
    assert len(same.scores) == 2 and np.all(same.scores >= -1e-9)
    assert different.mean > 3 * same.mean
    # The same encoder scores identical sets 0; one fitted encoder gives one score.
    encoder = ursa.SequenceAutoencoder(epochs=2, random_state=0, verbose=False,
                                       device=DEVICE).fit(real)
    again = context_fid(real, real, n_repeats=5, encoder=encoder)
    assert len(again.scores) == 1 and abs(again.mean) < 1e-6


def test_context_fid_bad_arguments(real):
    from ursa.metrics import context_fid

    with pytest.raises(ValueError, match="at least 2 real and 2 synthetic"):
        context_fid(real, real[:1])
    with pytest.raises(TypeError, match="encoder must be a fitted estimator"):
        context_fid(real, real, encoder=object())
    with pytest.raises(ValueError, match="features"):
        context_fid(real, real[..., :2])
