"""RecurrentGAN behaviour: sampling, variable lengths, conditions, persistence, history, warnings."""

import copy
import warnings

import numpy as np
import pytest
import torch

import ursa
from conftest import DEVICE, fit_tiny, make_sines, make_variable, rewrite
from ursa.metrics import discriminative_score

TINY = dict(hidden_size=8, latent_dim=4, num_layers=1, iterations=3, pretrain_iterations=2,
            batch_size=16, random_state=0, device=DEVICE)


def fit_quiet(X, y=None, resume=False, **params):
    return fit_tiny(ursa.RecurrentGAN(**{**TINY, **params}), X, y, resume=resume)


@pytest.fixture(scope="module")
def sines():
    return make_sines(40, 10, 2)


@pytest.fixture(scope="module")
def gan(sines):
    return fit_quiet(sines)


@pytest.mark.parametrize("architecture", ["timegan", "rcgan"])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_sample_shapes_and_range(sines, architecture, cell):
    est = fit_quiet(sines, architecture=architecture, cell=cell)
    out = est.sample(7, random_state=0)
    assert out.shape == (7, 10, 2) and out.dtype == np.float32
    assert np.isfinite(out).all()
    # minmax scaling ends in a sigmoid: samples stay inside the training range
    low, high = sines.min(axis=(0, 1)), sines.max(axis=(0, 1))
    assert (out >= low - 1e-5).all() and (out <= high + 1e-5).all()
    assert est.sample(3, n_timesteps=25, random_state=0).shape == (3, 25, 2)


def test_sample_is_reproducible_and_in_original_scale():
    X = make_sines(40, 10, 2) * 50.0 + 1000.0  # far from [0, 1]: sampling must undo the scaling
    est = fit_quiet(X)
    a, b = est.sample(5, random_state=3), est.sample(5, random_state=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, est.sample(5, random_state=4))
    assert not np.array_equal(est.sample(5), est.sample(5))  # None: fresh noise each call
    assert 940 < a.mean() < 1060


def test_standard_scaling_is_unbounded(sines):
    est = fit_quiet(sines, scaling="standard")
    assert est.network_.config.bounded_output is False
    assert est.sample(4, random_state=0).shape == (4, 10, 2)


def test_output_margin_scales_the_data_inside_the_sigmoid_range(sines, tmp_path):
    """output_margin=m scales the training data to [m, 1 - m]: the recovery's sigmoid then reaches
    the data's extremes at finite logits. Samples are still returned in the original scale, and
    the scaler (with its range) is saved with the model."""
    est = fit_quiet(sines, output_margin=0.1)
    scaled = est.scaler_.transform(ursa.data.as_sequences(sines)).values
    np.testing.assert_allclose(scaled.min(axis=(0, 1)), 0.1, atol=1e-6)
    np.testing.assert_allclose(scaled.max(axis=(0, 1)), 0.9, atol=1e-6)
    out = est.sample(50, random_state=0)
    low, high = sines.min(axis=(0, 1)), sines.max(axis=(0, 1))
    span = high - low
    # The sigmoid's [0, 1] maps to [low - span / 8, high + span / 8] in the original scale.
    assert (out >= low - span / 8 - 1e-5).all() and (out <= high + span / 8 + 1e-5).all()
    loaded = ursa.load(est.save(tmp_path / "gan.ursa"))
    assert loaded.output_margin == 0.1 and loaded.scaler_.feature_range == (0.1, 0.9)
    np.testing.assert_array_equal(loaded.sample(4, random_state=1), est.sample(4, random_state=1))
    # Without min-max scaling there is no sigmoid and the margin is ignored.
    standard = fit_quiet(sines, scaling="standard", output_margin=0.1)
    assert standard.scaler_.feature_range == (0.0, 1.0)


def test_variable_length_samples_follow_training_lengths():
    X = make_variable(30, 15, 2)
    est = fit_quiet(X)
    out = est.sample(200, random_state=0)
    assert isinstance(out, list) and len(out) == 200
    lengths = np.array([len(s) for s in out])
    train_lengths = np.array([len(x) for x in X])
    assert set(lengths) <= set(train_lengths)
    assert len(set(lengths)) > 3  # drawn from the distribution, not one length
    assert abs(lengths.mean() - train_lengths.mean()) < 1.5
    assert all(s.shape[1] == 2 and np.isfinite(s).all() for s in out)
    fixed = est.sample(4, n_timesteps=9, random_state=0)
    assert isinstance(fixed, np.ndarray) and fixed.shape == (4, 9, 2)


def test_sample_after_load_is_identical(gan, tmp_path):
    path = gan.save(tmp_path / "gan.ursa")
    loaded = ursa.load(path)
    np.testing.assert_array_equal(loaded.sample(6, random_state=1), gan.sample(6, random_state=1))
    assert loaded.diversity_ratio_ == gan.diversity_ratio_


def test_variable_length_model_survives_save_load(tmp_path):
    X = make_variable(20, 12, 2)
    est = fit_quiet(X, architecture="rcgan")
    loaded = ursa.load(est.save(tmp_path / "m.ursa"))
    a, b = est.sample(10, random_state=2), loaded.sample(10, random_state=2)
    assert [len(s) for s in a] == [len(s) for s in b]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_history_has_every_phase_in_order(gan):
    phases = [r["phase"] for r in gan.history_]
    assert phases == ["embedding", "supervised", "joint"]
    joint = gan.history_[-1]
    for key in ("generator_loss", "discriminator_loss", "supervised_loss", "moment_loss",
                "reconstruction_loss", "seconds"):
        assert np.isfinite(joint[key])
    assert gan.history_[0]["iteration"] == 2 and joint["iteration"] == 3


def test_generator_steps_per_discriminator_step(sines):
    est = fit_quiet(sines, generator_steps=2)
    joint = est.history_[-1]
    assert joint["phase"] == "joint" and joint["iteration"] == 6  # 3 iterations x 2 updates
    assert np.isfinite(joint["discriminator_loss"]) and np.isfinite(joint["generator_loss"])
    one = fit_quiet(sines, iterations=6)  # as many generator updates, twice the D updates
    assert not np.array_equal(est.sample(3, random_state=0), one.sample(3, random_state=0))


def test_history_records_every_100_iterations(sines):
    est = fit_quiet(sines, architecture="rcgan", iterations=101)
    assert [r["iteration"] for r in est.history_] == [100, 101]
    assert {r["phase"] for r in est.history_} == {"adversarial"}


def test_pretraining_can_be_skipped(sines):
    est = fit_quiet(sines, pretrain_iterations=0)
    assert [r["phase"] for r in est.history_] == ["joint"]


def test_progress_bar_when_verbose(sines, capsys, monkeypatch):
    monkeypatch.setattr(ursa.training.ProgressBar, "DELAY", 0.0)
    fit_quiet(sines, verbose=True)
    err = capsys.readouterr().err
    assert "RecurrentGAN" in err and "record" in err


def test_mode_collapse_warns(sines):
    with pytest.warns(UserWarning, match="mode collapse"):
        ursa.RecurrentGAN(**{**TINY, "iterations": 1, "pretrain_iterations": 1}).fit(sines)


def test_callbacks_see_each_record(sines):
    seen = []

    class Recorder(ursa.training.Callback):
        def on_epoch_end(self, state, record):
            seen.append(record["phase"])

    fit_quiet(sines, callbacks=[Recorder()])
    assert seen == ["embedding", "supervised", "joint"]


def test_rcgan_has_no_embedder(sines):
    est = fit_quiet(sines, architecture="rcgan")
    with pytest.raises(ValueError, match="architecture='timegan'"):
        est.transform(sines)
    assert est.decision_function(sines).shape == (40,)


# ----------------------------------------------------------------- conditions
def two_classes(n=64, steps=8, seed=0):
    """Class 'low' sits near 0.2, class 'high' near 0.8 (two features, small wiggles)."""
    rng = np.random.default_rng(seed)
    y = np.array(["low", "high"] * (n // 2))
    level = np.where(y == "low", 0.2, 0.8)[:, None, None]
    X = level + 0.05 * rng.standard_normal((n, steps, 2))
    return X.astype(np.float32), y


def test_conditional_labels_steer_samples():
    X, y = two_classes()
    est = fit_quiet(X, y, hidden_size=16, iterations=100, pretrain_iterations=50, batch_size=32,
                    learning_rate=1e-2)
    assert list(est.classes_) == ["high", "low"]
    low = est.sample(100, y=["low"] * 100, random_state=0)
    high = est.sample(100, y=np.array(["high"] * 100), random_state=0)
    assert low.mean() + 0.2 < high.mean()
    mixed = est.sample(50, random_state=0)  # labels drawn with the training frequencies
    assert set(est.sample_labels_) == {"low", "high"}
    assert mixed.shape == (50, 8, 2)


def test_conditional_labels_persist(tmp_path):
    X, y = two_classes()
    est = fit_quiet(X, np.where(y == "low", 3, 7))
    loaded = ursa.load(est.save(tmp_path / "c.ursa"))
    assert loaded.classes_.tolist() == [3, 7] and loaded.classes_.dtype.kind == "i"
    labels = np.array([3, 7, 7])
    np.testing.assert_array_equal(loaded.sample(3, y=labels, random_state=0),
                                  est.sample(3, y=labels, random_state=0))
    scores = est.decision_function(X, y=np.where(y == "low", 3, 7))
    assert scores.shape == (64,) and ((scores >= 0) & (scores <= 1)).all()


def test_static_attributes(tmp_path):
    X, _ = two_classes()
    attributes = np.random.default_rng(0).normal(size=(64, 3))
    est = fit_quiet(X, attributes)
    assert est.network_.config.condition_dim == 3
    out = est.sample(5, y=attributes[:5], random_state=0)
    assert out.shape == (5, 8, 2)
    loaded = ursa.load(est.save(tmp_path / "s.ursa"))
    np.testing.assert_array_equal(loaded.sample(5, y=attributes[:5], random_state=0), out)
    with pytest.raises(ValueError, match=r"pass y"):
        est.sample(5)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        est.sample(5, y=np.zeros((5, 2)))


@pytest.mark.parametrize("y, error, pattern", [
    (np.zeros(5), ValueError, r"y has 5 rows but there are 40 sequences"),
    (np.zeros((40, 2, 2)), ValueError, r"1-D \(class labels\) or 2-D"),
    ("labels", TypeError, r"y must be a 1-D array"),
    (np.r_[np.zeros(39), np.nan][:, None], ValueError, r"y\[39\] contains NaN"),
])
def test_bad_y_at_fit(sines, y, error, pattern):
    with pytest.raises(error, match=pattern):
        ursa.RecurrentGAN(**TINY).fit(sines, y)


def test_bad_y_at_sample(sines, gan):
    with pytest.raises(ValueError, match="fitted without conditions"):
        gan.sample(3, y=[0, 1, 0])
    est = fit_quiet(sines, np.arange(40) % 2)
    with pytest.raises(ValueError, match=r"y\[1\] = 5 is not a class seen in fit"):
        est.sample(3, y=[0, 5, 1])
    with pytest.raises(ValueError, match="y has 2 rows but there are 3"):
        est.sample(3, y=[0, 1])


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(n_samples=0), r"n_samples must be an integer >= 1"),
    (dict(n_samples=2.5), r"n_samples must be an integer >= 1"),
    (dict(n_samples=2, n_timesteps=0), r"n_timesteps must be an integer >= 1"),
    (dict(n_samples=2, random_state=-1), r"random_state must be"),
])
def test_bad_sample_arguments(gan, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        gan.sample(**kwargs)


@pytest.mark.parametrize("name, value", [("architecture", "wgan"), ("iterations", 0),
                                          ("noise_dim", 0), ("gamma", -1.0),
                                          ("static_noise_dim", -1), ("ema_decay", -0.1),
                                          ("covariance_weight", -1.0),
                                          ("distribution_weight", -1.0),
                                          ("feature_distribution_weight", -1.0),
                                          ("output_margin", -0.1), ("output_margin", 0.5),
                                          ("step_threads", 0), ("step_threads", 3),
                                          ("step_threads", "all")])
def test_gan_parameters_checked_at_fit(sines, name, value):
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        ursa.RecurrentGAN(**{**TINY, name: value}).fit(sines)


def test_ema_decay_of_one_is_refused_as_an_open_bound(sines):
    with pytest.raises(ValueError, match=r"'ema_decay' parameter .* in \[0.0, 1.0\); got 1.0"):
        ursa.RecurrentGAN(**{**TINY, "ema_decay": 1.0}).fit(sines)


@pytest.mark.parametrize("architecture", ["timegan", "rcgan"])
def test_static_noise_is_drawn_once_per_sequence(sines, tmp_path, architecture):
    """static_noise_dim channels reach the generator beside the per-step noise: constant over a
    sequence's steps, different between sequences; saved and restored with the model."""
    est = fit_quiet(sines, architecture=architecture, static_noise_dim=3)
    seen = []
    hook = est.network_.generator.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    try:
        est.sample(6, n_timesteps=9, random_state=0)
    finally:
        hook.remove()
    z = seen[0]  # (6, 9, noise_dim + 3)
    assert z.shape == (6, 9, 2 + 3)
    static, per_step = z[..., -3:], z[..., :-3]
    assert torch.equal(static, static[:, :1].expand_as(static))  # one draw per sequence
    assert static[:, 0].std(0).min() > 0.05  # ... that differs between sequences
    assert per_step.std(1).min() > 0.05  # the per-step channels still change every step
    loaded = ursa.load(est.save(tmp_path / "gan.ursa"))
    assert loaded.static_noise_dim == 3
    np.testing.assert_array_equal(loaded.sample(4, random_state=1), est.sample(4, random_state=1))


def test_file_from_before_static_noise_loads_without_it(sines, tmp_path):
    """A file whose parameters lack static_noise_dim, ema_decay, data_weight and output_margin
    (written before they existed) rebuilds a generator without per-step static channels, not with
    today's default, and says that it was trained without weight averaging, a data
    discriminator or an output margin (its scaler state holds the method only)."""
    est = fit_quiet(sines, static_noise_dim=0, ema_decay=0.0, data_weight=0.0, output_margin=0.0)

    def older_params(document):
        for name in ("static_noise_dim", "ema_decay", "data_weight", "output_margin"):
            del document["params"][name]
        assert document["scaler"] == {"method": "minmax"}

    data = est.save(tmp_path / "gan.ursa").read_bytes()
    (tmp_path / "older.ursa").write_bytes(rewrite(data, tmp_path, document_changes=older_params))
    loaded = ursa.load(tmp_path / "older.ursa")
    assert loaded.static_noise_dim == 0 and loaded.ema_decay == 0.0 and loaded.data_weight == 0.0
    assert loaded.output_margin == 0.0 and loaded.scaler_.feature_range == (0.0, 1.0)
    assert loaded.network_.data_discriminator is None
    np.testing.assert_array_equal(loaded.sample(4, random_state=1), est.sample(4, random_state=1))


def test_data_discriminator_reads_the_data_and_trains(sines, tmp_path):
    """data_weight > 0 adds a discriminator on data-space sequences (n_features inputs), whose
    losses are recorded and whose weights move during the joint phase; saved and loaded, the
    model samples the same."""
    params = dict(data_weight=1.0, pretrain_iterations=20, random_state=3)
    one = fit_quiet(sines, iterations=1, **params)
    est = fit_quiet(sines, iterations=40, **params)
    critic = est.network_.data_discriminator
    assert critic.stack.rnn.input_size == sines.shape[2]
    joint = [r for r in est.history_ if r["phase"] == "joint"]
    assert all(np.isfinite(r["data_generator_loss"]) and np.isfinite(r["data_discriminator_loss"])
               for r in joint)
    moved = [not torch.equal(a, b) for a, b in zip(critic.parameters(),
                                                   one.network_.data_discriminator.parameters())]
    assert all(moved)  # trained over 39 more joint iterations
    for name in ("embedder", "recovery", "generator", "supervisor", "discriminator"):
        for a, b in zip(getattr(est.network_, name).parameters(),
                        getattr(one.network_, name).parameters()):
            assert a.shape == b.shape  # the other networks are as without it
    loaded = ursa.load(est.save(tmp_path / "gan.ursa"))
    np.testing.assert_array_equal(loaded.sample(3, random_state=0), est.sample(3, random_state=0))
    with pytest.raises(ValueError, match="data_weight"):
        fit_quiet(sines, architecture="rcgan", data_weight=1.0)


def test_data_weight_default_depends_on_the_architecture(sines):
    """data_weight=None (the default) means 1.0 for TimeGAN, whose own discriminator reads
    latents only, and 0 for rcgan, whose discriminator reads the data; 0 turns it off."""
    timegan = fit_quiet(sines)
    assert timegan.data_weight is None
    assert timegan.network_.data_discriminator is not None
    assert all(np.isfinite(r["data_generator_loss"])
               for r in timegan.history_ if r["phase"] == "joint")
    explicit = fit_quiet(sines, data_weight=1.0)  # the same fit as the default, bit for bit
    np.testing.assert_array_equal(explicit.sample(3, random_state=0),
                                  timegan.sample(3, random_state=0))
    off = fit_quiet(sines, data_weight=0.0)
    assert off.network_.data_discriminator is None
    assert not any("data_generator_loss" in r or "data_discriminator_loss" in r
                   for r in off.history_)
    rcgan = fit_quiet(sines, architecture="rcgan")
    assert not hasattr(rcgan.network_, "data_discriminator")
    assert fit_quiet(sines, architecture="rcgan", data_weight=0.0).data_weight == 0.0


def test_covariance_loss_sees_features_moving_together():
    """Features drawn independently against the same features made to move together: equal
    per-step means and spreads (TimeGAN's moment loss cannot tell them apart), different
    covariances. Reordering the sequences changes nothing; padding is ignored."""
    from ursa.networks import covariance_loss, moment_loss

    gen = torch.Generator().manual_seed(0)
    real = torch.randn(512, 10, 3, generator=gen)
    shared = torch.randn(512, 10, 1, generator=gen)
    together = (real + 2 * shared) / np.sqrt(5.0)  # unit variance, correlation 0.8
    mask = torch.ones(512, 10)
    assert moment_loss(together, real, mask).item() < 0.15
    assert covariance_loss(together, real, mask).item() > 0.6
    assert covariance_loss(real[torch.randperm(512, generator=gen)], real, mask).item() < 1e-6
    assert covariance_loss(real[..., :1], together[..., :1], mask).item() == 0.0
    lengths = torch.randint(2, 11, (512,), generator=gen)
    short = (torch.arange(10)[None, :] < lengths[:, None]).float()
    padded = torch.where(short[..., None] > 0, together, torch.full_like(together, 1e3))
    np.testing.assert_allclose(covariance_loss(padded, real, short).item(),
                               covariance_loss(together, real, short).item(), rtol=1e-5)


def test_distribution_loss_sees_a_dropped_mode():
    """Real sequences come in two shapes; fakes with the same per-step means and spreads but no
    shapes (TimeGAN's moment loss is blind to the difference), and fakes that keep only one
    shape, both score far above the real data against itself. A shuffled copy scores 0; padding
    is ignored; the gradient pulls a fake that sits on one shape towards the other."""
    from ursa.networks import mmd_loss, moment_loss

    gen = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 3, 12)
    shape = torch.stack([torch.sin(t), torch.cos(t)], dim=-1)  # (time, 2)
    sign = torch.where(torch.rand(256, generator=gen) < 0.5, -1.0, 1.0)[:, None, None]
    real = sign * shape + 0.05 * torch.randn(256, 12, 2, generator=gen)
    other = sign.flip(0) * shape + 0.05 * torch.randn(256, 12, 2, generator=gen)  # fresh draw
    mean, std = real.mean(0), real.std(0)
    blurred = mean + std * torch.randn(256, 12, 2, generator=gen)
    one_mode = shape + 0.05 * torch.randn(256, 12, 2, generator=gen)
    mask = torch.ones(256, 12)
    floor = mmd_loss(other, real, mask).item()
    assert moment_loss(blurred, real, mask).item() < 0.1
    assert mmd_loss(blurred, real, mask).item() > 10 * floor
    assert mmd_loss(one_mode, real, mask).item() > 10 * floor
    assert abs(mmd_loss(real[torch.randperm(256, generator=gen)], real, mask).item()) < 1e-5
    lengths = torch.randint(2, 13, (256,), generator=gen)
    short = (torch.arange(12)[None, :] < lengths[:, None]).float()
    padded = torch.where(short[..., None] > 0, one_mode, torch.full_like(one_mode, 1e3))
    np.testing.assert_allclose(mmd_loss(padded, real, short).item(),
                               mmd_loss(one_mode, real, short).item(), rtol=1e-5)
    fake = one_mode.clone().requires_grad_(True)
    mmd_loss(fake, real, mask).backward()
    # Gradient descent moves the fakes away from the crowded shape, towards its mirror image.
    assert (torch.einsum("btc,tc->b", -fake.grad, -shape) > 0).float().mean() > 0.9


def test_feature_distribution_loss_matches_each_feature_on_its_own():
    """Five features move together and a sixth does not. Fakes that get the sixth feature's
    shape wrong, and keep the other five, raise the per-feature MMD relative to its floor far
    more than the whole-sequence MMD. It is the mean of one-feature MMDs, ignores padding, and
    is ~0 for a shuffled copy of the data."""
    from ursa.networks import feature_mmd_loss, mmd_loss

    gen = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 3, 12)

    def prices(n):  # five channels moving together: a level and a trend, shared
        level = torch.rand(n, 1, 1, generator=gen)
        trend = 0.3 * t[None, :, None] * torch.rand(n, 1, 1, generator=gen)
        return level + trend + 0.01 * torch.randn(n, 12, 5, generator=gen)

    def volume(n):
        return 0.2 * torch.sin(4 * t)[None, :, None] * torch.rand(n, 1, 1, generator=gen)

    real = torch.cat([prices(256), volume(256)], -1)
    other = torch.cat([prices(256), volume(256)], -1)  # a fresh draw: the sampling floor
    wrong = torch.cat([prices(256), 0.2 * torch.rand(256, 12, 1, generator=gen)], -1)  # no shape
    mask = torch.ones(256, 12)
    whole = mmd_loss(wrong, real, mask) / mmd_loss(other, real, mask)  # ~4.6
    per_feature = feature_mmd_loss(wrong, real, mask) / feature_mmd_loss(other, real, mask)  # ~30
    assert per_feature > 3 * whole
    one_by_one = torch.stack([mmd_loss(wrong[..., [c]], real[..., [c]], mask) for c in range(6)])
    torch.testing.assert_close(feature_mmd_loss(wrong, real, mask), one_by_one.mean())
    assert abs(feature_mmd_loss(real[torch.randperm(256, generator=gen)], real, mask)) < 1e-5
    lengths = torch.randint(2, 13, (256,), generator=gen)
    short = (torch.arange(12)[None, :] < lengths[:, None]).float()
    padded = torch.where(short[..., None] > 0, wrong, torch.full_like(wrong, 1e3))
    torch.testing.assert_close(feature_mmd_loss(padded, real, short),
                               feature_mmd_loss(wrong, real, short))


@pytest.mark.parametrize("architecture, phase", [("timegan", "joint"), ("rcgan", "adversarial")])
@pytest.mark.parametrize("name", ["distribution_weight", "covariance_weight",
                                  "feature_distribution_weight"])
def test_matching_weights_enter_the_generator_objective(sines, architecture, phase, name):
    """Every data-space matching term works with both architectures: off, nothing is recorded;
    on, the loss is recorded each step and its gradient changes the generator."""
    base = fit_quiet(sines, iterations=20, architecture=architecture)
    key = name.replace("_weight", "_loss")
    assert not any(key in r for r in base.history_)
    weighted = fit_quiet(sines, iterations=20, architecture=architecture, **{name: 10.0})
    joint = [r[key] for r in weighted.history_ if r["phase"] == phase]
    assert joint and np.all(np.isfinite(joint)) and min(joint) >= 0
    # Computing the term draws no random numbers, so any change comes from its gradient.
    assert not all(torch.equal(p, q) for p, q in zip(base.network_.generator.parameters(),
                                                     weighted.network_.generator.parameters()))


@pytest.mark.parametrize("static, width", [(None, 2 + 2), (0, 2)])
def test_static_noise_defaults_to_one_channel_per_feature(sines, static, width):
    est = fit_quiet(sines, static_noise_dim=static)
    assert est.network_.generator.rnn.input_size == width  # 2 per-step + static channels


def test_weight_average_follows_its_formula():
    """The average starts at the first update's weights and moves by (1 - decay) towards the
    current weights, with the decay warmed up as min(decay, (1 + t) / (10 + t))."""
    from ursa.training import WeightAverage

    layer = torch.nn.Linear(1, 1, bias=False)
    average = WeightAverage([layer], decay=0.5)
    expected = None
    for t, value in enumerate([4.0, 2.0, 8.0, -1.0, 3.0], 1):
        with torch.no_grad():
            layer.weight.fill_(value)
        average.update_parameters(torch.nn.ModuleList([layer]))
        decay = min(0.5, (1 + t) / (10 + t))
        expected = value if expected is None else decay * expected + (1 - decay) * value
    assert next(average.module.parameters()).item() == pytest.approx(expected)
    assert layer.weight.item() == 3.0  # the module keeps its own weights until copied
    restored = copy.deepcopy(average)
    restored.load_state_dict(average.state_dict())  # checkpoint state: the average and its count
    assert int(restored.n_averaged) == 5
    average.copy_to([layer])
    assert layer.weight.item() == pytest.approx(expected)


class RawWeights(ursa.training.Callback):
    """Keeps the generator's weights as training leaves them (before any averaging is copied)."""

    def on_train_end(self, state):
        self.weights = {k: v.clone() for k, v in state.module.generator.state_dict().items()}


@pytest.mark.parametrize("architecture", ["timegan", "rcgan"])
def test_samples_come_from_the_averaged_generator(sines, architecture):
    raw = RawWeights()
    averaged = fit_quiet(sines, architecture=architecture, iterations=30, callbacks=[raw])
    fitted = averaged.network_.generator.state_dict()
    assert any(not torch.equal(fitted[k], raw.weights[k]) for k in fitted)
    raw = RawWeights()
    plain = fit_quiet(sines, architecture=architecture, iterations=30, ema_decay=0.0,
                      callbacks=[raw])
    fitted = plain.network_.generator.state_dict()
    assert all(torch.equal(fitted[k], raw.weights[k]) for k in fitted)
    # Everything before the averaging is the same fit: the discriminators match.
    assert all(torch.equal(a, b) for a, b in zip(
        averaged.network_.discriminator.state_dict().values(),
        plain.network_.discriminator.state_dict().values()))


def test_sample_needs_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ursa.RecurrentGAN().sample(3)


# ----------------------------------------------------------------- behaviour
def test_training_beats_noise_on_the_discriminative_score():
    """After training, the post-hoc classifier separates synthetic from real far worse than it
    separates uniform noise from real."""
    X = ursa.datasets.make_sines(200, n_timesteps=12, n_features=4, random_state=0)
    est = ursa.RecurrentGAN(hidden_size=12, latent_dim=8, num_layers=1, iterations=250,
                            pretrain_iterations=100, batch_size=64, learning_rate=3e-3,
                            random_state=0, device=DEVICE)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a trained model must not warn of collapse
        est.fit(X)
    synthetic = est.sample(200, random_state=1)
    noise = np.random.default_rng(0).uniform(size=X.shape).astype(np.float32)
    metric = dict(n_repeats=2, iterations=300, batch_size=64, random_state=0)
    trained = discriminative_score(X, synthetic, **metric).mean
    floor = discriminative_score(X, noise, **metric).mean
    assert floor > 0.3
    assert trained < 0.5 * floor
    assert est.diversity_ratio_ > 0.3


def test_fit_leaves_torch_threads_and_rng_alone(sines):
    threads = torch.get_num_threads()
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    fit_quiet(sines, n_threads=1).sample(2, random_state=0)
    assert torch.equal(torch.rand(2), expected)
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("params", [
    dict(),  # the latent and the data-space discriminators
    dict(generator_steps=2),  # steps where the discriminators do not train
    dict(data_weight=0.0, bidirectional=True, num_layers=2),
])
def test_step_threads_give_the_same_fit(sines, params):
    """The joint step's parts on a second thread: the same operations in the same order within
    each part, so the same history and samples, bit for bit."""
    y = np.arange(len(sines)) % 2  # conditions reach every block
    fits = [fit_quiet(sines, y, iterations=6, step_threads=n, **params) for n in (1, 2)]
    serial, threaded = fits
    assert threaded._step_threads("cpu") == 2
    assert len(serial.history_) == len(threaded.history_) > 2
    for a, b in zip(serial.history_, threaded.history_):
        assert {k: v for k, v in a.items() if k != "seconds"} == \
            {k: v for k, v in b.items() if k != "seconds"}
    np.testing.assert_array_equal(serial.sample(4, y=[0, 1, 0, 1], random_state=0),
                                  threaded.sample(4, y=[0, 1, 0, 1], random_state=0))
    state = [dict(f.network_.state_dict()) for f in fits]
    assert all(torch.equal(state[0][k], state[1][k]) for k in state[0])


def test_step_threads_resolution(sines):
    gan = ursa.RecurrentGAN(step_threads="auto")
    assert gan._step_threads("cpu") == (2 if ursa.training.available_cores() >= 2 else 1)
    assert gan._step_threads("cuda") == 1
    assert ursa.RecurrentGAN(step_threads=2)._step_threads("cuda") == 2
    # Dropout between layers draws random numbers in the parts, whose order two threads would
    # make depend on timing: those fits stay on one thread.
    assert ursa.RecurrentGAN(step_threads=2, dropout=0.1, num_layers=2)._step_threads("cpu") == 1
    assert ursa.RecurrentGAN(step_threads=2, dropout=0.1, num_layers=1)._step_threads("cpu") == 2
    assert ursa.RecurrentGAN(step_threads=2, architecture="rcgan")._step_threads("cpu") == 1


def test_step_threads_share_torch_threads_and_restore_them(sines):
    threads = torch.get_num_threads()
    seen = []

    class Spy(ursa.training.Callback):
        def on_epoch_end(self, state, record):
            seen.append(torch.get_num_threads())

    fit_quiet(sines, step_threads=2, n_threads=None, callbacks=[Spy()])
    assert seen and set(seen) == {max(1, threads // 2)}
    assert torch.get_num_threads() == threads
    seen.clear()
    fit_quiet(sines, step_threads=2, n_threads=1, callbacks=[Spy()])
    assert set(seen) == {1} and torch.get_num_threads() == threads


def test_docstring_example_runs():
    import doctest

    import ursa.estimators.gan as module

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_kernel_features_embed_sets_at_their_mmd():
    """The random-feature embedding's squared gap approximates mmd_loss (same kernel, same
    width), and one sequence's features stay within the norm bound a private release uses."""
    from ursa.networks import KernelFeatures, embedding_gap, mmd_loss

    gen = torch.Generator().manual_seed(0)
    real = torch.rand(300, 6, 3, generator=gen)
    fake = torch.rand(300, 6, 3, generator=gen) * 0.6
    mask = torch.ones(300, 6)
    flat = real.flatten(1)
    width = float(torch.cdist(flat, flat).pow(2).sum() / (300 * 299))
    features = KernelFeatures(18, width, n_features=4096, generator=gen)
    target = features(real, mask).mean(0)
    assert embedding_gap(fake, mask, features, target).item() == pytest.approx(
        mmd_loss(fake, real, mask).item(), rel=0.1)
    assert embedding_gap(real, mask, features, target).item() < 1e-9
    assert features(fake, mask).norm(dim=1).max().item() <= features.norm_bound
