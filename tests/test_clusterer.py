"""RecurrentClusterer behaviour (the shared suite covers the common contract) and its modules."""

import numpy as np
import pytest
import torch
from sklearn.cluster import AgglomerativeClustering, KMeans

import ursa
from conftest import DEVICE, LearningRates, make_sines, rewrite
from ursa.metrics import adjusted_rand_score, silhouette_score
from ursa.networks.clustering import (
    clustering_inputs,
    lagged_differences,
    nt_xent,
    pooled_width,
    random_crops,
    soft_assignments,
    target_distribution,
    temporal_pool,
)

FAST = dict(hidden_size=32, latent_dim=8, epochs=60, clustering_epochs=10, validation_fraction=0.0,
            random_state=0, device=DEVICE)


def grouped_sines(n_per_group=20, frequencies=(0.1, 0.3, 0.8), lengths=(40, 80), seed=0,
                  amplitude=(0.8, 1.25)):
    """Noisy sines, one frequency per group, random phase and amplitude, variable lengths."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for group, freq in enumerate(frequencies):
        for _ in range(n_per_group):
            t = np.arange(rng.integers(*lengths))
            x = rng.uniform(*amplitude) * np.sin(freq * t + rng.uniform(0, 2 * np.pi))
            X.append((x + 0.1 * rng.normal(size=len(t))).astype(np.float32))
            y.append(group)
    return X, np.array(y)


@pytest.fixture(scope="module")
def sines_fit():
    # Three restarts, the best by the internal criterion: they clear ARI 0.9 on these groups for
    # more seeds than a single fit does (docs/clustering.md), so the test depends less on the
    # seed.
    X, y = grouped_sines()
    return ursa.RecurrentClusterer(n_clusters=3, n_init=3, **FAST).fit(X), X, y


def test_recovers_groups_of_variable_length_sines(sines_fit):
    model, X, y = sines_fit
    assert adjusted_rand_score(y, model.labels_) > 0.9


def test_predicts_new_sequences_of_other_lengths(sines_fit):
    model, X, y = sines_fit
    new, new_y = grouped_sines(n_per_group=10, lengths=(20, 30), seed=5)  # shorter than training
    longer, longer_y = grouped_sines(n_per_group=10, lengths=(100, 150), seed=6)
    for data, truth in ((new, new_y), (longer, longer_y)):
        # the clusters found on the training data carry over: same group -> same cluster
        mapping = {g: np.bincount(model.labels_[y == g]).argmax() for g in range(3)}
        expected = np.array([mapping[g] for g in truth])
        assert np.mean(model.predict(data) == expected) > 0.85


def test_fitted_attributes_consistent(sines_fit):
    model, X, y = sines_fit
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(X), proba.argmax(1))
    np.testing.assert_array_equal(model.labels_, model.predict(X))
    assert model.cluster_centers_.shape == (3, model.latent_dim)
    assert model.transform(X).shape == (len(X), model.latent_dim)
    stages = [r["stage"] for r in model.history_]
    assert stages[0] == "pretrain" and "cluster" in stages
    assert stages == sorted(stages, key=["pretrain", "cluster"].index)  # pretraining comes first
    # Univariate data: encoder="auto" reads it through the convolutional front-end (a quarter
    # of the steps), so "auto" pools four times less.
    assert model.encoder_ == "conv-rnn-attention"
    assert model.pool_size_ == int(np.ceil(np.median([len(x) for x in X]) / (32 * 4)))


def test_fit_predict_equals_labels():
    X, _ = grouped_sines(n_per_group=8)
    params = {**FAST, "epochs": 2, "clustering_epochs": 2}
    labels = ursa.RecurrentClusterer(n_clusters=3, **params).fit_predict(X)
    np.testing.assert_array_equal(labels, ursa.RecurrentClusterer(n_clusters=3, **params).fit(X).labels_)


def test_clustering_stage_stops_on_tolerance():
    X, _ = grouped_sines(n_per_group=8)
    base = {**FAST, "epochs": 3, "clustering_epochs": 15}
    strict = ursa.RecurrentClusterer(n_clusters=3, tol=0.0, **base).fit(X)  # never satisfied
    loose = ursa.RecurrentClusterer(n_clusters=3, tol=1.0, **base).fit(X)  # satisfied at once
    count = lambda m: sum(r["stage"] == "cluster" for r in m.history_)  # noqa: E731
    assert count(strict) == 15
    assert count(loose) == 1
    assert all("label_change" in r for r in loose.history_ if r["stage"] == "cluster")


def test_clustering_stage_warms_its_learning_rate_up():
    """Pretraining steps at learning_rate; the clustering stage's fresh optimiser reaches it over
    its first 5 epochs."""
    X, _ = grouped_sines(n_per_group=6)
    seen = LearningRates()
    # tol=0: no early stop; 20 pretraining epochs: codes settled enough that no cluster empties
    ursa.RecurrentClusterer(n_clusters=3, learning_rate=0.01, tol=0.0, callbacks=[seen],
                            **{**FAST, "epochs": 20, "clustering_epochs": 7}).fit(X)
    np.testing.assert_allclose(seen.rates, [0.01] * 20 + [0.002, 0.004, 0.006, 0.008] + [0.01] * 3)


def test_no_clustering_stage_keeps_initial_centres():
    """clustering_epochs=0: the centres are k-means' on the pretrained codes."""
    X, _ = grouped_sines(n_per_group=8)
    model = ursa.RecurrentClusterer(n_clusters=3, **{**FAST, "epochs": 3, "clustering_epochs": 0}).fit(X)
    assert all(r["stage"] == "pretrain" for r in model.history_)
    codes = model.transform(X)
    for j in range(3):
        members = codes[model.labels_ == j]
        if len(members):  # a k-means centre is the mean of its members (up to float rounding)
            nearest = ((codes[:, None] - model.cluster_centers_[None]) ** 2).sum(-1).argmin(1)
            np.testing.assert_array_equal(nearest, model.labels_)


@pytest.mark.parametrize("clusterer", [AgglomerativeClustering(n_clusters=3),
                                       KMeans(n_clusters=3, n_init=2)])
def test_pluggable_clusterer(clusterer):
    X, y = grouped_sines(n_per_group=8)
    model = ursa.RecurrentClusterer(n_clusters=3, clusterer=clusterer,
                                    **{**FAST, "epochs": 3, "clustering_epochs": 1}).fit(X)
    assert model.cluster_centers_.shape == (3, model.latent_dim)
    assert set(np.unique(model.labels_)) <= {0, 1, 2}
    assert model.clusterer is clusterer and not hasattr(clusterer, "labels_")  # a clone was fitted


def test_clusterer_with_wrong_cluster_count_is_refused():
    X, _ = grouped_sines(n_per_group=6)
    model = ursa.RecurrentClusterer(n_clusters=3, clusterer=AgglomerativeClustering(n_clusters=2),
                                    **{**FAST, "epochs": 1})
    with pytest.raises(ValueError, match="found 2 clusters .* n_clusters=3"):
        model.fit(X)


def test_more_clusters_than_sequences_is_refused():
    X, _ = grouped_sines(n_per_group=1)
    with pytest.raises(ValueError, match="n_clusters=5 is larger than the number of sequences in X \\(3\\)"):
        ursa.RecurrentClusterer(n_clusters=5, **FAST).fit(X)


@pytest.mark.parametrize("name, value", [("n_clusters", 0), ("pool", 0), ("pool", "big"),
                                         ("gamma", -1.0), ("alpha", 0.0), ("tol", 2.0),
                                         ("update_interval", 0), ("summary", "max"),
                                         ("contrastive", -0.5), ("clusterer", "kmeans"),
                                         ("n_init", 0)])
def test_bad_clusterer_parameters(name, value):
    with pytest.raises(ValueError, match=f"'{name}' parameter of RecurrentClusterer"):
        ursa.RecurrentClusterer(**{name: value}).fit(np.zeros((4, 5)))


def test_save_load_keeps_labels_centres_and_pool(sines_fit, tmp_path):
    model, X, _ = sines_fit
    loaded = ursa.load(model.save(tmp_path / "clusters.ursa"))
    np.testing.assert_array_equal(loaded.labels_, model.labels_)
    np.testing.assert_array_equal(loaded.cluster_centers_, model.cluster_centers_)
    assert loaded.pool_size_ == model.pool_size_
    np.testing.assert_array_equal(loaded.predict_proba(X[:5]), model.predict_proba(X[:5]))


def test_save_with_clusterer_object(tmp_path):
    X, _ = grouped_sines(n_per_group=6)
    model = ursa.RecurrentClusterer(n_clusters=3, clusterer=KMeans(n_clusters=3, n_init=1),
                                    **{**FAST, "epochs": 1, "clustering_epochs": 1}).fit(X)
    loaded = ursa.load(model.save(tmp_path / "m.ursa"))
    assert loaded.clusterer is None and isinstance(model.clusterer, KMeans)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_save_sets_no_attribute(tmp_path):
    """Saving reads the estimator: it never swaps a parameter out and back (another thread
    reading ``clusterer`` meanwhile would see None)."""
    writes = []

    class Recording(ursa.RecurrentClusterer):
        def __setattr__(self, name, value):
            writes.append(name)
            super().__setattr__(name, value)

    X, _ = grouped_sines(n_per_group=6)
    model = Recording(n_clusters=3, clusterer=KMeans(n_clusters=3, n_init=1),
                      **{**FAST, "epochs": 1, "clustering_epochs": 1}).fit(X)
    writes.clear()
    model.save(tmp_path / "m.ursa")
    assert writes == []


def test_n_init_keeps_the_restart_with_the_best_latent_silhouette():
    X, _ = grouped_sines(n_per_group=8)
    params = {**FAST, "epochs": 4, "clustering_epochs": 2}
    single = ursa.RecurrentClusterer(n_clusters=3, **params).fit(X)
    model = ursa.RecurrentClusterer(n_clusters=3, n_init=3, **params).fit(X)
    scores = model.restart_scores_
    assert scores.shape == (3,) and len(np.unique(scores)) == 3  # three different fits
    # restart 0 is the n_init=1 fit itself; the others start from other weights
    assert scores[0] == single.restart_scores_[0] and single.restart_scores_.shape == (1,)
    assert model.best_restart_ == int(np.argmax(scores))
    # the kept model is the chosen restart: its score is the silhouette of its own labels
    kept = silhouette_score(model.transform(X), model.labels_)
    assert kept == pytest.approx(scores.max(), abs=1e-4)
    if model.best_restart_ == 0:
        np.testing.assert_array_equal(model.labels_, single.labels_)
    again = ursa.RecurrentClusterer(n_clusters=3, n_init=3, **params).fit(X)
    np.testing.assert_array_equal(again.restart_scores_, scores)  # seeded: reproducible
    np.testing.assert_array_equal(again.transform(X), model.transform(X))


def test_n_init_resumes_every_restart_from_its_checkpoint(tmp_path):
    X, _ = grouped_sines(n_per_group=6)
    params = {**FAST, "epochs": 2, "clustering_epochs": 2, "n_init": 2}
    ursa.RecurrentClusterer(n_clusters=3, checkpoint_dir=str(tmp_path), **params).fit(X)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster", "cluster-1", "pretrain",
                                                          "pretrain-1"]
    resumed = ursa.RecurrentClusterer(n_clusters=3, checkpoint_dir=str(tmp_path),
                                      **{**params, "epochs": 3}).fit(X, resume=True)
    straight = ursa.RecurrentClusterer(n_clusters=3, **{**params, "epochs": 3}).fit(X)
    np.testing.assert_array_equal(resumed.restart_scores_, straight.restart_scores_)
    np.testing.assert_array_equal(resumed.transform(X), straight.transform(X))


def test_save_load_keeps_restart_scores(tmp_path):
    X, _ = grouped_sines(n_per_group=6)
    model = ursa.RecurrentClusterer(n_clusters=3, n_init=2,
                                    **{**FAST, "epochs": 2, "clustering_epochs": 1}).fit(X)
    loaded = ursa.load(model.save(tmp_path / "m.ursa"))
    np.testing.assert_array_equal(loaded.restart_scores_, model.restart_scores_)
    assert loaded.best_restart_ == model.best_restart_
    np.testing.assert_array_equal(loaded.predict(X), model.labels_)


# ----------------------------------------------------------------- modules
def test_temporal_pool_masks_padding_and_partial_windows():
    x = torch.arange(1, 8, dtype=torch.float32).view(1, 7, 1)  # 1..7
    padded = torch.cat([x, torch.full((1, 3, 1), 99.0)], 1)  # garbage after the end
    pooled, lengths = temporal_pool(padded, torch.tensor([7]), 3)
    assert lengths.tolist() == [3]
    np.testing.assert_allclose(pooled[0, :3, 0].numpy(), [2.0, 5.0, 7.0])  # last window: only 7


def test_temporal_pool_mean_std_uses_valid_steps_only():
    x = torch.tensor([1.0, 3.0, 5.0, 5.0, 6.0, 99.0]).view(1, 6, 1)  # length 5: 99 is padding
    pooled, lengths = temporal_pool(x, torch.tensor([5]), 3, "mean_std")
    assert pooled.shape == (1, 2, 2) and lengths.tolist() == [2]
    np.testing.assert_allclose(pooled[0, :, 0].numpy(), [3.0, 5.5])  # means
    np.testing.assert_allclose(pooled[0, :, 1].numpy(), [np.std([1, 3, 5]), 0.5], rtol=1e-6)  # stds
    assert pooled_width(4, 3, "mean_std") == 8 and pooled_width(4, 1, "mean_std") == 4
    assert pooled_width(4, 3, "mean") == 4
    with pytest.raises(ValueError, match="features must be one of"):
        temporal_pool(x, torch.tensor([5]), 3, "max")


def test_pool_features_change_the_network_input_and_survive_save_load(tmp_path):
    X, y = grouped_sines(n_per_group=6)
    params = {**FAST, "epochs": 2, "clustering_epochs": 1, "pool": 4, "differences": False,
              "encoder": "rnn"}  # the recurrence reads the pooled input itself
    both = ursa.RecurrentClusterer(n_clusters=3, **params).fit(X)
    mean = ursa.RecurrentClusterer(n_clusters=3, pool_features="mean", **params).fit(X)
    assert both.network_.autoencoder.encoder.stack.config.input_size == 2
    assert mean.network_.autoencoder.encoder.stack.config.input_size == 1
    loaded = ursa.load(both.save(tmp_path / "m.ursa"))
    assert loaded.pool_features == "mean_std"
    np.testing.assert_array_equal(loaded.predict(X), both.predict(X))


def test_lagged_differences_and_the_encoder_input():
    x = torch.tensor([[1.0, 2.0, 4.0, 7.0, 11.0, 0.0]]).unsqueeze(-1)  # last step is padding
    np.testing.assert_allclose(lagged_differences(x, 2)[0, :5, 0], [0.0, 1.0, 3.0, 5.0, 7.0])
    np.testing.assert_allclose(lagged_differences(x, 1)[0, :5, 0], [0.0, 1.0, 2.0, 3.0, 4.0])
    lengths = torch.tensor([5])
    inputs, pooled_lengths = clustering_inputs(x, lengths, 2, "mean", torch.tensor([2.0]))
    # windows (1, 2), (4, 7), (11): series means, then the means of the changes / 2
    np.testing.assert_allclose(inputs[0, :, 0], [1.5, 5.5, 11.0])
    np.testing.assert_allclose(inputs[0, :, 1], [0.25, 2.0, 3.5])
    assert pooled_lengths.tolist() == [3]
    alone, _ = clustering_inputs(x, lengths, 2, "mean")
    torch.testing.assert_close(alone, inputs[..., :1])


def test_differences_feed_the_encoder_and_are_not_reconstructed(tmp_path):
    """differences=True widens the encoder's input with the pooled changes, scaled by their root
    mean square on the (scaled) training data; the decoder rebuilds the pooled series only, and
    the scale is saved with the model."""
    X, _ = grouped_sines(n_per_group=6)
    params = {**FAST, "epochs": 2, "clustering_epochs": 1, "pool": 4, "encoder": "rnn"}
    model = ursa.RecurrentClusterer(n_clusters=3, differences=True, **params).fit(X)
    net = model.network_
    assert net.autoencoder.encoder.stack.config.input_size == 4  # mean, std; their changes
    assert net.target_width == 2 and net.autoencoder.decoder.readout.out_features == 2
    scaled = [(x.reshape(-1, 1) - model.scaler_.offset_) / model.scaler_.scale_ for x in X]
    changes = np.concatenate([s[4:] - s[:-4] for s in scaled] + [s[:4] - s[:1] for s in scaled])
    np.testing.assert_allclose(net.difference_scale.cpu().numpy(), np.sqrt((changes ** 2).mean(0)),
                               rtol=1e-4)
    loaded = ursa.load(model.save(tmp_path / "m.ursa"))
    assert loaded.differences is True
    torch.testing.assert_close(loaded.network_.difference_scale.cpu(), net.difference_scale.cpu())
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    plain = ursa.RecurrentClusterer(n_clusters=3, differences=False, **params).fit(X)
    assert plain.network_.autoencoder.encoder.stack.config.input_size == 2
    assert not hasattr(plain.network_, "difference_scale")
    with pytest.raises(ValueError, match="differences"):
        ursa.RecurrentClusterer(n_clusters=3, differences="yes").fit(X)


def test_file_from_before_differences_loads_without_them(tmp_path):
    """A file whose parameters lack ``differences`` (written before it existed) holds a network
    without them: it loads as differences=False, not with today's default."""
    X, _ = grouped_sines(n_per_group=6)
    model = ursa.RecurrentClusterer(n_clusters=3, differences=False,
                                    **{**FAST, "epochs": 2, "clustering_epochs": 1}).fit(X)

    def older_params(document):
        del document["params"]["differences"], document["differences"], document["smoothness"]

    data = model.save(tmp_path / "m.ursa").read_bytes()
    (tmp_path / "older.ursa").write_bytes(rewrite(data, tmp_path, document_changes=older_params))
    loaded = ursa.load(tmp_path / "older.ursa")
    assert loaded.differences is False and loaded.differences_ is False
    assert np.isnan(loaded.smoothness_)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_smoothness_is_the_lag_one_autocorrelation():
    """_smoothness: 1 - mean squared step change / (2 variance) per channel over the valid steps,
    averaged over the channels; padding after a sequence's end is left out."""
    from ursa.data import Sequences
    from ursa.estimators.clusterer import _smoothness

    alternating = np.array([1.0, -1.0] * 5)  # variance 1, every change of size 2: rho = -1
    constant = np.full(10, 3.0)  # no variance: counts as smooth, 1
    x = np.stack([alternating, constant], axis=1)[None].astype(np.float32)
    assert _smoothness(Sequences(x, np.array([10]))) == pytest.approx(0.0)  # mean of -1 and 1
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(4, 300, 1)), axis=1).astype(np.float32)
    noise = rng.normal(size=(4, 300, 1)).astype(np.float32)
    assert _smoothness(Sequences(walk, np.full(4, 300))) > 0.95
    assert abs(_smoothness(Sequences(noise, np.full(4, 300)))) < 0.1
    # padded steps (here huge) do not count; a one-step sequence adds no change
    padded = np.concatenate([noise, np.full((4, 50, 1), 1e6, np.float32)], axis=1)
    assert _smoothness(Sequences(padded, np.full(4, 300))) == pytest.approx(
        _smoothness(Sequences(noise, np.full(4, 300))), abs=1e-6)
    assert _smoothness(Sequences(np.ones((2, 3, 1), np.float32), np.array([1, 1]))) == 1.0


def test_auto_differences_follow_the_smoothness(tmp_path):
    """differences="auto" (the default) reads the changes of smooth sequences and not of noise;
    True and False override it; the choice and the statistic are saved with the model."""
    params = {**FAST, "epochs": 2, "clustering_epochs": 1, "pool": 4}
    smooth, _ = grouped_sines(n_per_group=6)
    noise = list(np.random.default_rng(0).normal(size=(18, 40)).astype(np.float32))
    auto_smooth = ursa.RecurrentClusterer(n_clusters=3, **params).fit(smooth)
    auto_noise = ursa.RecurrentClusterer(n_clusters=3, **params).fit(noise)
    assert auto_smooth.differences == "auto" and auto_smooth.differences_ is True
    assert auto_smooth.smoothness_ > 0.7 and auto_smooth.network_.differences
    assert auto_noise.differences_ is False and auto_noise.smoothness_ < 0.7
    assert not auto_noise.network_.differences
    forced = ursa.RecurrentClusterer(n_clusters=3, differences=True, **params).fit(noise)
    assert forced.differences_ is True and forced.smoothness_ == auto_noise.smoothness_
    for model, data in ((auto_smooth, smooth), (auto_noise, noise)):
        loaded = ursa.load(model.save(tmp_path / "m.ursa"))
        assert loaded.differences == "auto" and loaded.differences_ is model.differences_
        assert loaded.smoothness_ == model.smoothness_
        np.testing.assert_array_equal(loaded.predict(data), model.predict(data))

    def bad_choice(document):
        document["differences"] = "auto"

    data = auto_smooth.save(tmp_path / "m.ursa").read_bytes()
    (tmp_path / "bad.ursa").write_bytes(rewrite(data, tmp_path, document_changes=bad_choice))
    with pytest.raises(ValueError, match="differences must be true or false"):
        ursa.load(tmp_path / "bad.ursa")


@pytest.mark.parametrize("max_steps, batch_size, epochs, expected", [
    (10, 8, 100, 2),  # 36 sequences -> 5 batches per epoch -> ceil(10 / 5) epochs
    (3, 8, 100, 1),
    (None, 8, 4, 4),  # no cap: epochs
    (1000, 8, 4, 4),  # the cap is above epochs' budget
])
def test_max_steps_caps_pretraining_epochs(max_steps, batch_size, epochs, expected):
    X, _ = grouped_sines(n_per_group=12)
    model = ursa.RecurrentClusterer(n_clusters=3, **{**FAST, "epochs": epochs, "clustering_epochs": 0,
                                                     "max_steps": max_steps, "batch_size": batch_size,
                                                     "hidden_size": 4}).fit(X)
    assert sum(r["stage"] == "pretrain" for r in model.history_) == expected


def test_clustering_stage_that_empties_a_cluster_returns_to_its_start():
    """When the clustering loss empties a cluster, the stage stops and restores the weights it
    started from (the pretrained encoder and its k-means centres), even after refreshes at
    which every cluster still had members."""
    from types import SimpleNamespace

    from ursa.estimators.clusterer import _pool_sequences, _TargetRefresh

    X, _ = grouped_sines(n_per_group=6)
    model = ursa.RecurrentClusterer(n_clusters=3, **{**FAST, "epochs": 3, "clustering_epochs": 0})
    model.fit(X)
    seqs = model._validate_data(X, reset=False)
    pooled = _pool_sequences(model.scaler_.transform(seqs), model.pool_size_, model.pool_features,
                             getattr(model.network_, "difference_scale", None))
    net = model.network_
    refresh = _TargetRefresh(model, net, pooled, model._device())
    state = SimpleNamespace(stop=False, best_weights=None)
    refresh.on_train_begin(state)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert refresh.n_start == 3
    with torch.no_grad():  # an epoch that moves the weights but keeps every cluster
        net.autoencoder.encoder.project.bias.add_(1e-3)
    record = {"epoch": 1}
    refresh.on_epoch_end(state, record)
    assert "collapsed" not in record and state.best_weights is None
    state.stop = False  # (labels unchanged: the stage would stop there, converged)
    with torch.no_grad():  # a collapse: every code now nearest to one centre
        net.centers.copy_(torch.stack([net.centers[0], net.centers[0] + 1e3, net.centers[0] - 1e3]))
        net.centers[0].copy_(torch.from_numpy(model.transform(X).mean(0)))
    record = {"epoch": 2}
    refresh.on_epoch_end(state, record)
    assert record.get("collapsed") is True and state.stop
    for key, value in before.items():
        torch.testing.assert_close(state.best_weights[key], value)


def test_soft_assignments_and_target():
    z = torch.tensor([[0.0, 0.0], [10.0, 0.0], [9.0, 0.0]])
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    q = soft_assignments(z, centers, alpha=1.0)
    np.testing.assert_allclose(q.sum(1).numpy(), 1.0, rtol=1e-6)
    assert q.argmax(1).tolist() == [0, 1, 1]
    p = target_distribution(q)
    np.testing.assert_allclose(p.sum(1).numpy(), 1.0, rtol=1e-6)
    assert (p.max(1).values >= q.max(1).values - 1e-6).all()  # the target is sharper


def test_random_crops_are_contiguous_pieces():
    generator = torch.Generator().manual_seed(0)
    x = torch.arange(20, dtype=torch.float32).view(2, 10, 1).clone()
    lengths = torch.tensor([10, 6])
    crops, crop_lengths = random_crops(x, lengths, 0.5, generator)
    for i in range(2):
        n = int(crop_lengths[i])
        assert lengths[i] * 0.5 <= n <= lengths[i]
        piece = crops[i, :n, 0]
        assert torch.all(piece[1:] - piece[:-1] == 1)  # consecutive steps
        assert piece[-1] < x[i, 0, 0] + lengths[i]  # never beyond the sequence's end
        assert torch.all(crops[i, n:] == 0)


def test_nt_xent_prefers_matching_pairs():
    a = torch.eye(4)
    assert nt_xent(a, a, 0.5) < nt_xent(a, a.roll(1, 0), 0.5)


def test_auto_encoder_by_data_and_saved_with_the_model(tmp_path):
    """encoder="auto": the hybrid for univariate data, the plain recurrence for multivariate or
    short data; the choice is saved, and a file that predates it loads as the plain recurrence."""
    X, _ = grouped_sines(n_per_group=6)
    params = {**FAST, "epochs": 2, "clustering_epochs": 1}
    uni = ursa.RecurrentClusterer(n_clusters=3, **params).fit(X)
    assert uni.encoder == "auto" and uni.encoder_ == "conv-rnn-attention"
    assert uni.network_.autoencoder.encoder.front is not None
    multi = ursa.RecurrentClusterer(n_clusters=3, **params).fit(make_sines(12, 20, 2))
    assert multi.encoder_ == "rnn" and multi.network_.autoencoder.encoder.front is None
    short = ursa.RecurrentClusterer(n_clusters=3, **params).fit(make_sines(12, 20, 1)[..., 0])
    assert short.encoder_ == "rnn"  # shorter than the 24 steps the hybrid was measured from
    loaded = ursa.load(uni.save(tmp_path / "m.ursa"))
    assert loaded.encoder_ == "conv-rnn-attention"
    np.testing.assert_array_equal(loaded.predict(X), uni.predict(X))
    document, arrays = multi._get_state()
    del document["encoder"]  # as written before encoder="auto"
    older = ursa.RecurrentClusterer(n_clusters=3, **{**params, "encoder": "rnn"})
    older._set_state(document, arrays)
    assert older.encoder_ == "rnn"
