"""Differentially private training: per-sequence gradients, the budget, the estimators' privacy
parameter, and the membership-inference metric."""

import sys
import warnings

import numpy as np
import pytest
import torch

import ursa
from ursa.metrics import membership_inference_auc
from ursa.networks import RecurrentConfig, SequenceAutoencoderNet
from ursa.networks.losses import masked_mse, per_sequence_means
from ursa.training import BatchStream, PrivacyBudget, PrivacyBudgetExceeded, PrivateUpdates
from ursa.data import as_sequences

pytest.importorskip("opacus")
pytestmark = pytest.mark.filterwarnings("ignore:Optimal order is the largest alpha")


def _sines(n=64, t=12, seed=0):
    rng = np.random.default_rng(seed)
    grid = np.linspace(0, 6, t)
    return (0.5 + 0.5 * np.sin(grid[None] * rng.uniform(1, 2, (n, 1))
                               + rng.uniform(0, 6, (n, 1))))[..., None].astype("float32")


@pytest.mark.parametrize("cell, kind", [("rnn", "rnn"), ("gru", "rnn"), ("lstm", "rnn"),
                                        ("gru", "conv-rnn-attention")])
def test_per_sequence_gradients_equal_each_sequence_alone(cell, kind):
    torch.manual_seed(0)
    net = SequenceAutoencoderNet(RecurrentConfig(3, 8, num_layers=2, cell=cell), 4, kind=kind)
    x, lengths = torch.randn(5, 7, 3), torch.tensor([7, 5, 7, 3, 6])
    private = PrivateUpdates(PrivacyBudget(3.0), [net], n_sequences=100, sample_rate=0.05,
                             steps=10)
    with private.capture(), per_sequence_means():
        (masked_mse(net(x, lengths)[0], x, lengths) * 5).backward()
    samples = {name: p.grad_sample.clone() for name, p in net.named_parameters()}
    for i in range(5):
        net.zero_grad()
        xi = x[i:i + 1, :lengths[i]]
        masked_mse(net(xi, lengths[i:i + 1])[0], xi, lengths[i:i + 1]).backward()
        for name, p in net.named_parameters():
            torch.testing.assert_close(samples[name][i], p.grad, rtol=1e-4, atol=1e-6)


def test_per_sequence_means_weigh_sequences_equally():
    prediction, target = torch.zeros(2, 4, 1), torch.ones(2, 4, 1)
    target[1] = 3.0
    lengths = torch.tensor([4, 1])
    assert float(masked_mse(prediction, target, lengths)) == pytest.approx((4 + 9) / 5)
    with per_sequence_means():
        assert float(masked_mse(prediction, target, lengths)) == pytest.approx((1 + 9) / 2)


@pytest.mark.parametrize("epsilon,rate,steps", [(0.5, 0.01, 500), (3.0, 0.1, 200),
                                                (10.0, 0.25, 40), (1.0, 1.0, 5)])
def test_accountant_never_exceeds_the_requested_epsilon(epsilon, rate, steps):
    from opacus.accountants import RDPAccountant

    net = torch.nn.Linear(2, 1)
    private = PrivateUpdates(PrivacyBudget(epsilon, 1e-5), [net], n_sequences=1000,
                             sample_rate=rate, steps=steps)
    reference = RDPAccountant()
    for _ in range(steps):
        reference.step(noise_multiplier=private.noise_multiplier, sample_rate=rate)
    private.taken = steps
    spent = private.spent()["epsilon"]
    assert spent <= epsilon
    assert spent == pytest.approx(reference.get_epsilon(1e-5), rel=1e-9)
    assert spent > 0.8 * epsilon  # calibrated to the budget, not far below it


def test_a_step_past_the_budget_is_refused():
    net = torch.nn.Linear(2, 1)
    private = PrivateUpdates(PrivacyBudget(1.0), [net], n_sequences=10, sample_rate=0.5, steps=2)
    optimizer = private.optimizer(torch.optim.SGD(net.parameters(), lr=0.1))
    x = torch.randn(4, 2)
    for _ in range(2):
        with private.capture():
            private.update(optimizer, list(net.parameters()), net(x).pow(2).mean(), 4)
    with pytest.raises(PrivacyBudgetExceeded, match="budget 1"):
        with private.capture():
            private.update(optimizer, list(net.parameters()), net(x).pow(2).mean(), 4)
    assert private.spent()["epsilon"] <= 1.0 and private.spent()["steps"] == 2


def test_poisson_batches_vary_in_size_and_survive_a_checkpoint():
    seqs = as_sequences(np.zeros((200, 3, 1), dtype="float32"))
    stream = BatchStream(seqs, 20, np.random.default_rng(0), sample_rate=0.1)
    assert stream.new_pass() == 10
    sizes = [len(b) for b in list(stream.pending)]
    assert len(set(sizes)) > 1 and 10 <= np.mean(sizes) <= 30
    copy = BatchStream(seqs, 20, np.random.default_rng(1), sample_rate=0.1)
    copy.load_state_dict(stream.state_dict())
    assert all(np.array_equal(a, b) for a, b in zip(copy.pending, stream.pending))


def test_private_autoencoder_spends_at_most_its_budget_and_saves_it(tmp_path):
    X = _sines()
    model = ursa.SequenceAutoencoder(hidden_size=8, latent_dim=4, epochs=3, batch_size=16,
                                     scaling=None, privacy={"epsilon": 2.0, "delta": 1e-3},
                                     verbose=False, random_state=0).fit(X)
    spent = model.privacy_spent_
    assert 0 < spent["epsilon"] <= 2.0 and spent["delta"] == 1e-3
    assert spent["steps"] == 3 * 4 and spent["sample_rate"] == 0.25
    assert "val_loss" not in model.history_[-1]  # every sequence trains
    again = ursa.SequenceAutoencoder(**model.get_params()).fit(X)
    np.testing.assert_array_equal(again.transform(X), model.transform(X))  # repeatable
    plain = ursa.SequenceAutoencoder(**{**model.get_params(), "privacy": None}).fit(X)
    assert not hasattr(plain, "privacy_spent_")
    assert not np.allclose(plain.transform(X), model.transform(X))
    path = model.save(tmp_path / "private.ursa")
    loaded = ursa.load(path)
    assert loaded.privacy_spent_ == spent and loaded.privacy == {"epsilon": 2.0, "delta": 1e-3}
    assert ursa.persistence.describe_model(path)["privacy"] == spent
    from ursa.report import build_report

    assert "Trained with differential privacy: epsilon" in build_report(loaded, X, verbose=False)


def test_private_fit_resumed_with_a_longer_schedule_is_refused(tmp_path):
    X = _sines(32)
    params = dict(hidden_size=4, latent_dim=2, epochs=2, batch_size=8, scaling=None,
                  privacy={"epsilon": 1.0}, verbose=False, random_state=0,
                  checkpoint_dir=str(tmp_path))
    ursa.SequenceAutoencoder(**params).fit(X)
    with pytest.raises(ValueError, match="schedule changed"):
        ursa.SequenceAutoencoder(**{**params, "epochs": 4}).fit(X, resume=True)


def test_private_timegan_takes_a_private_step_for_every_step_that_reads_data():
    X = _sines(64, 8)
    gan = ursa.RecurrentGAN(hidden_size=8, num_layers=1, latent_dim=4, iterations=20,
                            pretrain_iterations=10, batch_size=16, scaling=None, verbose=False,
                            privacy={"epsilon": 5.0}, random_state=0, distribution_weight=10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        gan.fit(X)
    spent = gan.privacy_spent_
    assert spent["steps"] == 10 + 10 + 20 and spent["epsilon"] <= 5.0
    last = gan.history_[-1]
    assert np.isfinite(last["discriminator_loss"]) and "supervised_loss" not in last
    # The terms that read real batches are left out (moments, distribution), nothing released.
    assert "moment_loss" not in last and "distribution_loss" not in last
    assert "releases" not in spent
    assert np.isfinite(gan.sample(4, random_state=0)).all()


@pytest.mark.parametrize("distribution", [None, 0.0])
def test_private_timegan_with_a_data_bound_learns_from_released_statistics(distribution,
                                                                          tmp_path):
    X = _sines(64, 8)
    gan = ursa.RecurrentGAN(hidden_size=8, num_layers=1, latent_dim=4, iterations=300,
                            batch_size=16, scaling=None, verbose=False, random_state=0,
                            privacy={"epsilon": 5.0, "data_bound": 1.0},
                            distribution_weight=distribution)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        gan.fit(X)
    spent = gan.privacy_spent_
    # No step reads the data: the moments and (by default) the kernel embedding are released
    # once each, and they spend the budget.
    assert spent["steps"] == 0 and spent["noise_multiplier"] is None
    assert spent["releases"] == (2 if distribution is None else 1)
    assert 0.9 * 5.0 < spent["epsilon"] <= 5.0
    assert {r["phase"] for r in gan.history_} == {"joint"}
    first, last = gan.history_[0], gan.history_[-1]
    assert "discriminator_loss" not in last
    assert ("distribution_loss" in last) == (distribution is None)
    assert last["generator_loss"] < first["generator_loss"]
    assert np.isfinite(gan.sample(4, random_state=0)).all()
    # What was spent, and how, survives saving; info and the report say it.
    from typer.testing import CliRunner

    from ursa.cli import app
    from ursa.report import build_report

    loaded = ursa.load(gan.save(tmp_path / "gan.ursa"))
    assert loaded.privacy_spent_ == spent
    assert "sequence (noisy releases of the data" in build_report(loaded, X, verbose=False)
    info = CliRunner().invoke(app, ["info", str(tmp_path / "gan.ursa")])
    assert info.exit_code == 0 and "noisy releases of the data's statistics" in info.stdout


def test_statistics_fit_matches_the_data_it_never_reads_directly():
    """With little noise (a large epsilon) the generator, trained only on the releases, lands
    its samples on the data's per-step mean and spread (its first few hundred iterations barely
    move it: an untrained generator's samples crowd together, where the kernel's pull is flat)."""
    X = _sines(256, 8) * 0.5 + 0.25
    gan = ursa.RecurrentGAN(hidden_size=16, num_layers=1, latent_dim=8, iterations=2000,
                            batch_size=64, scaling=None, verbose=False, random_state=0,
                            privacy={"epsilon": 1e4, "data_bound": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        gan.fit(X)
    fake = gan.sample(512, random_state=1)
    assert np.abs(fake.mean(0) - X.mean(0)).mean() < 0.05
    assert np.abs(fake.std(0) - X.std(0)).mean() < 0.05
    untrained = ursa.RecurrentGAN(**{**gan.get_params(), "iterations": 1}).fit(X)
    assert np.abs(untrained.sample(512, random_state=1).std(0) - X.std(0)).mean() > 0.05


def test_moment_gap_is_the_moment_loss_against_given_moments():
    from ursa.networks.losses import moment_gap, moment_loss

    rng = torch.Generator().manual_seed(0)
    fake, real = torch.rand(64, 5, 3, generator=rng), torch.rand(64, 5, 3, generator=rng) * 2
    mask = torch.ones(64, 5)
    mean, std = real.mean(0), real.std(0, unbiased=False)
    expected = moment_loss(fake, real, mask)
    assert float(moment_gap(fake, mask, mean, std)) == pytest.approx(float(expected),
                                                                          rel=1e-4)


def test_private_clusterer_finds_clusters_within_its_budget(tmp_path):
    rng = np.random.default_rng(0)
    grid = np.linspace(0, 1, 40)
    X = np.concatenate([np.sin(2 * np.pi * (f * grid[None] + rng.uniform(size=(300, 1))))
                        + 0.1 * rng.normal(size=(300, 40)) for f in (1, 3, 6)]).astype("float32")
    y = np.repeat([0, 1, 2], 300)
    model = ursa.RecurrentClusterer(n_clusters=3, pool=2, differences=False, scaling=None,
                                    batch_size=128, privacy={"epsilon": 10.0}, verbose=False,
                                    random_state=0)
    model.fit(X)
    spent = model.privacy_spent_
    assert 0 < spent["epsilon"] <= 10.0 and spent["releases"] == 5
    assert all(r["stage"] == "pretrain" for r in model.history_)  # no clustering stage
    assert np.linalg.norm(model.cluster_centers_, axis=1) == pytest.approx(4.0, rel=1e-5)
    from sklearn.metrics import normalized_mutual_info_score
    assert normalized_mutual_info_score(y, model.labels_) > 0.5  # it learned under the noise
    loaded = ursa.load(model.save(tmp_path / "c.ursa"))
    assert not hasattr(loaded, "labels_")  # the training data's labels stay in memory
    np.testing.assert_array_equal(loaded.predict(X), model.labels_)
    with pytest.raises(ValueError, match="numeric pool, differences=False"):
        ursa.RecurrentClusterer(scaling=None, privacy={"epsilon": 1.0}, verbose=False).fit(X)


def test_private_detector_leaves_the_threshold_to_calibrate(tmp_path):
    t = np.arange(1200)
    series = np.sin(2 * np.pi * t / 40).astype("float32")
    det = ursa.SequenceAnomalyDetector(window=16, hidden_size=8, epochs=2, channels="all",
                                       scaling=None, privacy={"epsilon": 3.0}, verbose=False,
                                       random_state=0).fit(series[:600])
    assert det.threshold_ is None and not hasattr(det, "decision_scores_")
    assert det.privacy_spent_["epsilon"] <= 3.0
    with pytest.raises(ValueError, match=r"calibrate\(X\)"):
        det.predict(series)
    flags = det.calibrate(series[600:900]).predict(series)
    assert det.threshold_ > 0 and flags.shape == series.shape
    loaded = ursa.load(det.save(tmp_path / "d.ursa"))
    assert loaded.threshold_ == det.threshold_ and not hasattr(loaded, "decision_scores_")
    with pytest.raises(ValueError, match="window set to a number"):
        ursa.SequenceAnomalyDetector(window="auto", channels="all", scaling=None,
                                     privacy={"epsilon": 1.0}, verbose=False).fit(series)


def test_private_rcgan_trains_only_the_discriminator_on_data():
    X = _sines(64, 8)
    gan = ursa.RecurrentGAN(architecture="rcgan", hidden_size=8, num_layers=1, latent_dim=4,
                            iterations=30, batch_size=16, scaling=None, verbose=False,
                            distribution_weight=1.0, privacy={"epsilon": 5.0},
                            random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        gan.fit(X)
    assert 0 < gan.privacy_spent_["epsilon"] <= 5.0 and gan.privacy_spent_["steps"] == 30
    assert "distribution_loss" not in gan.history_[-1]  # it reads real batches: left out
    sample = gan.sample(5, random_state=0)
    assert sample.shape == (5, 8, 1) and np.isfinite(sample).all()


@pytest.mark.parametrize("params,match", [
    ({"privacy": {"epsilon": 1.0}}, "scaling='standard'"),
    ({"privacy": {"epsilon": 0.0}, "scaling": None}, r"privacy\['epsilon'\]"),
    ({"privacy": {"epsilon": 1.0, "delta": 1.5}, "scaling": None}, r"privacy\['delta'\]"),
    ({"privacy": {"eps": 1.0}, "scaling": None}, "unknown keys"),
    ({"privacy": {"epsilon": 1.0}, "scaling": None, "precision": "bfloat16"}, "float32"),
])
def test_bad_privacy_settings_are_named(params, match):
    with pytest.raises(ValueError, match=match):
        ursa.SequenceAutoencoder(verbose=False, **params).fit(_sines(8))


def test_private_gan_refuses_what_it_cannot_cover():
    X = _sines(16, 6)
    base = dict(scaling=None, privacy={"epsilon": 1.0}, verbose=False)
    with pytest.raises(ValueError, match="scaling='minmax'"):
        ursa.RecurrentGAN(privacy={"epsilon": 1.0}, verbose=False).fit(X)
    with pytest.raises(ValueError, match="conditions"):
        ursa.RecurrentGAN(architecture="rcgan", **base).fit(X, y=np.arange(16) % 2)
    ragged = [X[i, : 3 + i % 3] for i in range(16)]
    with pytest.raises(ValueError, match="equal-length"):
        ursa.RecurrentGAN(architecture="rcgan", **base).fit(ragged)


def test_missing_opacus_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "opacus", None)
    with pytest.raises(ImportError, match=r"ursa\[privacy\]"):
        ursa.SequenceAutoencoder(scaling=None, privacy={"epsilon": 1.0}, epochs=1,
                                 verbose=False).fit(_sines(8))


def test_membership_inference_auc():
    assert membership_inference_auc([0.1, 0.2], [0.3, 0.4]) == 1.0
    assert membership_inference_auc([0.3, 0.4], [0.1, 0.2]) == 0.0
    assert membership_inference_auc([1.0, 2.0], [1.0, 2.0]) == 0.5
    rng = np.random.default_rng(0)
    assert abs(membership_inference_auc(rng.normal(size=2000), rng.normal(size=2000)) - 0.5) < 0.03
    with pytest.raises(ValueError, match=r"holdout_losses\[1\]"):
        membership_inference_auc([0.1], [0.2, np.nan])
    with pytest.raises(ValueError, match="train_losses must be a non-empty 1-D"):
        membership_inference_auc([], [0.2])


def test_command_line_fits_privately_and_info_says_what_was_spent(tmp_path):
    from typer.testing import CliRunner

    from ursa.cli import app

    ursa.data.write_csv(tmp_path / "data.csv", _sines(32, 8))
    model = tmp_path / "private.ursa"
    run = CliRunner().invoke(app, [
        "--quiet", "--seed", "0", "fit", "autoencoder", str(tmp_path / "data.csv"),
        "--out", str(model), "--set", "hidden_size=4", "--set", "latent_dim=2",
        "--set", "epochs=2", "--set", "batch_size=8", "--set", "scaling=none",
        "--set", "privacy={epsilon = 2.0, delta = 1e-3}"])
    assert run.exit_code == 0, run.output
    assert ursa.load(model).privacy_spent_["epsilon"] <= 2.0
    info = CliRunner().invoke(app, ["info", str(model)])
    assert info.exit_code == 0 and "differentially private per training sequence" in info.stdout
    assert "budget epsilon 2.0" in info.stdout


def test_closest_distances_find_copied_training_sequences():
    from ursa.metrics import closest_distances

    rng = np.random.default_rng(0)
    members, held = rng.random((50, 6, 2)), rng.random((50, 6, 2))
    copies = members + rng.normal(0, 0.01, members.shape)  # a generator that memorised
    d_members, d_held = closest_distances(members, copies), closest_distances(held, copies)
    assert d_members.shape == (50,) and d_members.max() < 0.1 < d_held.min()
    assert membership_inference_auc(d_members, d_held) == 1.0
    fresh = rng.random((200, 6, 2))  # one that did not
    auc = membership_inference_auc(closest_distances(members, fresh),
                                   closest_distances(held, fresh))
    assert 0.35 < auc < 0.65
    brute = np.sqrt(((held[:, None] - copies[None]) ** 2).sum((2, 3))).min(1)
    np.testing.assert_allclose(closest_distances(held, copies, batch_size=7), brute, rtol=1e-9)
    with pytest.raises(ValueError, match="shape"):
        closest_distances(members, copies[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        closest_distances(np.full((2, 6, 2), np.nan), copies)


def test_statistics_fit_resumes_to_the_uninterrupted_model(tmp_path):
    """A resumed fit draws the same releases again (the same data, seed and noise: nothing
    more is spent) and ends with the uninterrupted fit's model."""
    X = _sines(64, 8)
    params = dict(hidden_size=8, num_layers=1, latent_dim=4, iterations=300, batch_size=16,
                  scaling=None, verbose=False, random_state=0,
                  privacy={"epsilon": 5.0, "data_bound": 1.0})

    class Stop(ursa.training.Callback):
        def on_epoch_end(self, state, record):
            if record["iteration"] == 200:
                raise KeyboardInterrupt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        whole = ursa.RecurrentGAN(**params).fit(X)
        with pytest.raises(KeyboardInterrupt):
            ursa.RecurrentGAN(**params, checkpoint_dir=str(tmp_path), callbacks=[Stop()]).fit(X)
        resumed = ursa.RecurrentGAN(**params, checkpoint_dir=str(tmp_path)).fit(X, resume=True)
    assert resumed.privacy_spent_ == whole.privacy_spent_
    np.testing.assert_array_equal(resumed.sample(8, random_state=0),
                                  whole.sample(8, random_state=0))
