"""RecurrentGAN(architecture="diffusion"): the recurrent diffusion model learns, samples, steers by
condition, handles variable lengths, persists and resumes; the GANs' parameters are refused."""

import numpy as np
import pytest
import torch

import ursa
from conftest import DEVICE, fit_tiny, make_sines, make_variable
from ursa.networks.gan import DiffusionNet, GANConfig, noise_levels

TINY = dict(architecture="diffusion", hidden_size=8, num_layers=1, iterations=3, batch_size=16,
            sampling_steps=4, random_state=0, device=DEVICE, verbose=False)


def fit_quiet(X, y=None, **params):
    return fit_tiny(ursa.RecurrentGAN(**{**TINY, **params}), X, y)


def two_levels(n=128, n_steps=8, seed=0):
    """Sequences at one of two levels: feature 0 near 0.2 or 0.8 (a small wave on it), feature 1
    its mirror image, so that the two features always sum to 1. Returns (X, level labels)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    level = np.where(labels == 1, 0.8, 0.2)[:, None]
    wave = 0.05 * np.sin(np.arange(n_steps) + rng.uniform(0, 6.3, (n, 1)))
    first = level + wave
    return np.stack([first, 1.0 - first], axis=-1).astype(np.float32), labels


@pytest.fixture(scope="module")
def levels():
    return two_levels()


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_sample_shapes_range_and_reproducibility(cell):
    X = make_sines(40, 10, 2)
    est = fit_quiet(X, cell=cell)
    out = est.sample(7, random_state=0)
    assert out.shape == (7, 10, 2) and out.dtype == np.float32 and np.isfinite(out).all()
    low, high = X.min(axis=(0, 1)), X.max(axis=(0, 1))
    assert (out >= low - 1e-5).all() and (out <= high + 1e-5).all()  # clipped to the range
    np.testing.assert_array_equal(out, est.sample(7, random_state=0))
    assert not np.array_equal(out, est.sample(7, random_state=1))
    assert est.sample(3, n_timesteps=25, random_state=0).shape == (3, 25, 2)
    assert [r["phase"] for r in est.history_] == ["denoising"] and est.n_iter_ == 3


def test_training_learns_the_data_distribution(levels):
    """After training, samples keep the features' sum at 1 and fall into both levels in about
    the data's proportions; an untrained model's samples do neither."""
    X, _ = levels
    params = dict(hidden_size=16, batch_size=32, sampling_steps=20)
    trained = fit_quiet(X, iterations=600, **params)
    untrained = fit_quiet(X, iterations=1, **params)
    losses = [r["denoising_loss"] for r in trained.history_]
    assert losses[-1] < 0.5 * losses[0]

    def summary(model):
        samples = model.sample(200, random_state=0)
        sum_error = np.abs(samples.sum(-1) - 1.0).mean()
        high = (samples[..., 0].mean(1) > 0.5).mean()
        return sum_error, high

    sum_error, high = summary(trained)
    assert sum_error < 0.08, sum_error
    assert 0.3 < high < 0.7, high
    assert summary(untrained)[0] > 2 * sum_error


def test_conditions_steer_samples_and_persist(levels, tmp_path):
    X, labels = levels
    est = fit_quiet(X, labels, iterations=400, hidden_size=16, batch_size=32, sampling_steps=10)
    low = est.sample(50, y=np.zeros(50, dtype=int), random_state=0)[..., 0].mean()
    high = est.sample(50, y=np.ones(50, dtype=int), random_state=0)[..., 0].mean()
    assert high - low > 0.3, (low, high)
    est.save(tmp_path / "diffusion.ursa")
    loaded = ursa.load(tmp_path / "diffusion.ursa")
    assert loaded.architecture == "diffusion" and loaded.sampling_steps == 10
    y = np.array([0, 1, 1, 0])
    np.testing.assert_array_equal(loaded.sample(4, y=y, random_state=2),
                                  est.sample(4, y=y, random_state=2))


def test_variable_lengths_follow_training_lengths_and_padding_is_ignored():
    X = make_variable(30, 12)
    est = fit_quiet(X, iterations=5)
    out = est.sample(20, random_state=0)
    assert isinstance(out, list) and {len(s) for s in out} <= {len(x) for x in X}
    # The denoiser reads each sequence within its length: what lies after its end is ignored.
    net = est.network_
    y = torch.randn(2, 12, 2)
    lengths = torch.tensor([7, 12])
    t = torch.tensor([50, 50])
    changed = y.clone()
    changed[0, 7:] = 5.0
    with torch.inference_mode():
        a, b = net.denoise(y, t, lengths), net.denoise(changed, t, lengths)
    torch.testing.assert_close(a[0, :7], b[0, :7])
    torch.testing.assert_close(a[1], b[1])


def test_sampling_steps_trade_passes_for_resolution(levels):
    """One DDIM step from pure noise gives the denoiser's first guess; more steps change it,
    and the count is the number of denoiser passes."""
    X, _ = levels
    est = fit_quiet(X, iterations=300, hidden_size=16, sampling_steps=1)
    one = est.sample(4, random_state=0)
    est.network_.config.sampling_steps = 8
    calls = []
    handle = est.network_.stack.register_forward_hook(lambda *args: calls.append(1))
    eight = est.sample(4, random_state=0)
    handle.remove()
    assert len(calls) == 8 and not np.allclose(one, eight)


def test_noise_levels_fall_from_signal_to_noise():
    alpha_bar = noise_levels(200)
    assert alpha_bar.shape == (201,) and alpha_bar[0] == 1.0 and alpha_bar[-1] < 1e-3
    assert (alpha_bar[1:] <= alpha_bar[:-1]).all()


def test_noised_sequences_are_in_the_model_space():
    """Bounded data is diffused in [-1, 1]: at level 0 the noised sequence is the data mapped
    there; unbounded data is diffused as it is."""
    x = torch.rand(3, 5, 2)
    zero, noise = torch.zeros(3, dtype=torch.long), torch.randn(3, 5, 2)
    bounded = DiffusionNet(GANConfig(n_features=2, architecture="diffusion", hidden_size=4))
    torch.testing.assert_close(bounded.noised(x, zero, noise), 2 * x - 1)
    torch.testing.assert_close(bounded.from_model(bounded.to_model(x)), x)
    free = DiffusionNet(GANConfig(n_features=2, architecture="diffusion", hidden_size=4,
                                  bounded_output=False))
    torch.testing.assert_close(free.noised(x, zero, noise), x)


def test_interrupted_fit_resumes_to_the_uninterrupted_model(levels, tmp_path):
    X, _ = levels
    params = dict(iterations=300, random_state=1)

    class Stop(ursa.training.Callback):
        def on_epoch_end(self, state, record):
            if record["iteration"] == 200:
                raise KeyboardInterrupt

    whole = fit_quiet(X, **params)
    with pytest.raises(KeyboardInterrupt):
        fit_quiet(X, **params, checkpoint_dir=str(tmp_path), callbacks=[Stop()])
    resumed = fit_tiny(ursa.RecurrentGAN(**{**TINY, **params, "checkpoint_dir": str(tmp_path)}),
                       X, resume=True)
    np.testing.assert_array_equal(resumed.sample(8, random_state=0),
                                  whole.sample(8, random_state=0))


class RawWeights(ursa.training.Callback):
    """Keeps the weights as training leaves them (before the average is copied in)."""

    def on_train_end(self, state):
        self.weights = {k: v.clone() for k, v in state.module.state_dict().items()}


@pytest.mark.parametrize("decay, averaged", [(0.999, True), (0.0, False)])
def test_samples_come_from_the_averaged_denoiser(levels, decay, averaged):
    raw = RawWeights()
    est = fit_quiet(levels[0], iterations=30, ema_decay=decay, callbacks=[raw])
    fitted = est.network_.state_dict()
    assert any(not torch.equal(fitted[k], raw.weights[k]) for k in fitted) == averaged


@pytest.mark.parametrize("name, value", [
    ("noise_dim", 2), ("static_noise_dim", 0), ("data_weight", 1.0),
    ("distribution_weight", 10.0), ("covariance_weight", 1.0),
    ("feature_distribution_weight", 1.0), ("privacy", {"epsilon": 3.0}),
])
def test_gan_parameters_are_refused(levels, name, value):
    with pytest.raises(ValueError, match=name):
        fit_quiet(levels[0], **{name: value})


@pytest.mark.parametrize("steps", [0, 201])
def test_sampling_steps_checked_at_fit(levels, steps):
    """Between 1 and the 200 noise levels the model trains on."""
    with pytest.raises(ValueError, match="sampling_steps"):
        fit_quiet(levels[0], sampling_steps=steps)
    assert fit_quiet(levels[0], sampling_steps=200).sample(2, random_state=0).shape == (2, 8, 2)


@pytest.mark.parametrize("method", ["transform", "reconstruct", "decision_function"])
def test_methods_that_need_a_discriminator_or_embedder_say_so(levels, method):
    est = fit_quiet(levels[0])
    with pytest.raises(ValueError, match="architecture="):
        getattr(est, method)(levels[0])


@pytest.mark.parametrize("architecture, width", [("timegan", 32), ("diffusion", 64)])
def test_hidden_size_none_is_the_architectures_width(levels, architecture, width):
    est = fit_quiet(levels[0], architecture=architecture, hidden_size=None, iterations=1,
                    pretrain_iterations=1, sampling_steps=1)
    assert est.hidden_size is None and est.network_.config.hidden_size == width
    explicit = fit_quiet(levels[0], architecture=architecture, hidden_size=12, iterations=1,
                         pretrain_iterations=1, sampling_steps=1)
    assert explicit.network_.config.hidden_size == 12
