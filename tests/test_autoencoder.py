"""SequenceAutoencoder behaviour: it learns, its embeddings carry structure, its errors flag oddities."""

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

import ursa
from ursa import SequenceAutoencoder
from ursa.data import as_sequences
from conftest import DEVICE, make_sines

FAST = dict(hidden_size=32, latent_dim=8, batch_size=32, learning_rate=1e-2, random_state=0,
            device=DEVICE, validation_fraction=0.0)


@pytest.fixture(scope="module")
def sines_model():
    X = make_sines(256, 24, 1, seed=0)
    return X, SequenceAutoencoder(epochs=40, **FAST).fit(X)


def test_reconstruction_error_falls_far_below_the_mean_predictor(sines_model):
    X, ae = sines_model
    mean_error = np.mean((X - X.mean(axis=0)) ** 2)
    error = np.mean((ae.reconstruct(X) - X) ** 2)
    assert error < 0.1 * mean_error
    assert ae.loss_curve_[-1] < 0.2 * ae.loss_curve_[0]


def test_generalises_to_new_sequences_of_the_same_family(sines_model):
    _, ae = sines_model
    X_new = make_sines(64, 24, 1, seed=99)
    assert np.mean((ae.reconstruct(X_new) - X_new) ** 2) < 0.15 * X_new.var()


def test_inverse_transform_decodes_embeddings(sines_model):
    X, ae = sines_model
    decoded = ae.inverse_transform(ae.transform(X), n_timesteps=24)
    assert decoded.shape == (256, 24, 1)
    np.testing.assert_allclose(decoded, ae.reconstruct(X), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"Z must have shape \(n, 8\)"):
        ae.inverse_transform(np.zeros((2, 3)), 5)
    with pytest.raises(ValueError, match="n_timesteps"):
        ae.inverse_transform(np.zeros((2, 8)), 0)


def test_anomalous_sequences_score_higher(sines_model):
    X, ae = sines_model
    normal = make_sines(20, 24, 1, seed=5)
    odd = normal.copy()
    odd[:, 12, 0] += 4.0  # a spike in the middle of every sequence
    assert np.all(ae.decision_function(odd) > ae.decision_function(normal))
    np.testing.assert_array_equal(ae.score_samples(odd), -ae.decision_function(odd))
    steps = ae.step_errors(odd)
    assert np.all(np.argmax(steps, axis=1) == 12)  # the per-step error points at the spike


def two_families(n_per=100, seed=0):
    """Sines and square waves (0/1 levels) of one frequency, random phase and lengths 20-40."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for label in (0, 1):
        for _ in range(n_per):
            length = rng.integers(20, 41)
            wave = np.sin(0.3 * np.arange(length) + rng.uniform(0, 2 * np.pi))
            if label == 1:
                wave = 0.5 * np.sign(wave) + 0.5
            X.append(wave + 0.05 * rng.standard_normal(length))
            y.append(label)
    return X, np.array(y)


def test_embeddings_separate_two_families():
    X, y = two_families()
    ae = SequenceAutoencoder(epochs=20, **{**FAST, "latent_dim": 4}).fit(X)
    labels = KMeans(2, n_init=10, random_state=0).fit_predict(ae.transform(X))
    assert adjusted_rand_score(y, labels) > 0.9


def test_fit_transform_equals_fit_then_transform():
    X = make_sines(30, 10, 2)
    params = dict(hidden_size=8, latent_dim=3, epochs=2, random_state=0, device=DEVICE)
    np.testing.assert_array_equal(SequenceAutoencoder(**params).fit_transform(X),
                                  SequenceAutoencoder(**params).fit(X).transform(X))


def test_validation_split_and_early_stopping():
    X = make_sines(60, 10, 1)
    ae = SequenceAutoencoder(hidden_size=8, latent_dim=2, epochs=200, patience=2, learning_rate=0.05,
                             validation_fraction=0.3, random_state=0, device=DEVICE).fit(X)
    assert ae.n_iter_ < 200
    assert len(ae.validation_scores_) == ae.n_iter_


def test_thread_setting_is_restored():
    before = torch.get_num_threads()
    SequenceAutoencoder(hidden_size=4, latent_dim=2, epochs=1, n_threads=2, random_state=0,
                        device=DEVICE).fit(make_sines(8, 5, 1))
    assert torch.get_num_threads() == before


def test_progress_bar_once_a_fit_has_run_its_delay(capsys, monkeypatch):
    monkeypatch.setattr(ursa.training.ProgressBar, "DELAY", 0.0)
    SequenceAutoencoder(hidden_size=4, latent_dim=2, epochs=2, random_state=0,
                        device=DEVICE).fit(make_sines(8, 5, 1))
    err = capsys.readouterr().err
    assert "SequenceAutoencoder" in err and "/2 " in err  # the bar over the 2 epochs
    SequenceAutoencoder(hidden_size=4, latent_dim=2, epochs=2, verbose=False, random_state=0,
                        device=DEVICE).fit(make_sines(8, 5, 1))
    assert capsys.readouterr().err == ""


def test_quick_fit_is_silent_by_default(capsys):
    SequenceAutoencoder(hidden_size=4, latent_dim=2, epochs=2, random_state=0,
                        device=DEVICE).fit(make_sines(8, 5, 1))
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_checkpoint_dir_parameter(tmp_path):
    SequenceAutoencoder(hidden_size=4, latent_dim=2, epochs=2, random_state=0, device=DEVICE,
                        checkpoint_dir=tmp_path).fit(make_sines(8, 5, 1))
    assert (tmp_path / "checkpoint.safetensors").stat().st_size > 0


def test_cuda_request_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    with pytest.raises(ValueError, match="CUDA is not available"):
        SequenceAutoencoder(device="cuda", epochs=1).fit(make_sines(4, 5, 1))


def test_batched_inference_matches_one_batch(sines_model, monkeypatch):
    X, ae = sines_model
    full = ae.transform(X)
    monkeypatch.setattr(ae, "predict_batch_size", 7)
    np.testing.assert_allclose(ae.transform(X), full, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scaling", ["standard", "minmax"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_folded_scaling_matches_explicit_scaling(scaling, bidirectional):
    """transform/reconstruct fold the scaler into the weights; they must equal the explicit path."""
    X = [x * 50.0 + 7.0 for x in make_sines(30, 12, 3)]
    X[3] = X[3][:7]  # variable length too
    ae = SequenceAutoencoder(hidden_size=8, latent_dim=3, epochs=2, scaling=scaling,
                             bidirectional=bidirectional, random_state=0, device=DEVICE).fit(X)
    scaled = ae.scaler_.transform(as_sequences(X))
    values, lengths = scaled.tensors(ae._device())
    with torch.no_grad():
        recon_scaled, codes = ae.network_(values, lengths)
    values, recon_scaled, codes = values.cpu(), recon_scaled.cpu(), codes.cpu()
    np.testing.assert_allclose(ae.transform(X), codes.numpy(), rtol=1e-4, atol=1e-4)
    expected = ae.scaler_.inverse_transform_values(recon_scaled.numpy())
    for i, r in enumerate(ae.reconstruct(X)):
        np.testing.assert_allclose(r, expected[i, : len(X[i])], rtol=1e-4, atol=1e-3)
    # per-step errors are those of the scaled data
    errors = ((recon_scaled - values) ** 2).mean(-1).numpy()
    for i, e in enumerate(ae.step_errors(X)):
        np.testing.assert_allclose(e, errors[i, : len(X[i])], rtol=1e-3, atol=1e-5)


def test_refit_refreshes_the_folded_network():
    X = make_sines(20, 8, 1)
    ae = SequenceAutoencoder(hidden_size=4, latent_dim=2, epochs=1, random_state=0, device=DEVICE)
    first = ae.fit(X).transform(X)
    second = ae.set_params(random_state=1).fit(X).transform(X)
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(second, SequenceAutoencoder(**ae.get_params()).fit(X).transform(X))


def test_docstring_example_runs():
    import doctest

    import ursa.estimators.autoencoder as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


class _ThreadProbe(ursa.training.Callback):
    def on_train_begin(self, state):
        self.threads = torch.get_num_threads()


@pytest.mark.parametrize("cell, n_features, n_threads, expected", [
    ("gru", 2, None, 1),          # small products: one thread
    ("lstm", 200, None, "torch"),  # 4 x 64 x 264 x 64 multiply-adds per step: torch's setting
    ("gru", 2, 2, 2),             # n_threads overrides the rule
])
def test_fit_threads_follow_the_size_of_a_step(cell, n_features, n_threads, expected):
    before = torch.get_num_threads()
    probe = _ThreadProbe()
    X = np.random.default_rng(0).normal(size=(64, 3, n_features)).astype(np.float32)
    SequenceAutoencoder(cell=cell, hidden_size=64, latent_dim=2, epochs=1, batch_size=64,
                        n_threads=n_threads, callbacks=[probe], random_state=0, verbose=False,
                        device="cpu").fit(X)
    assert probe.threads == (before if expected == "torch" else expected)
    assert torch.get_num_threads() == before  # the caller's setting is restored
