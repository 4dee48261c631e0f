"""scikit-learn conformance: mixins and tags, ``score`` for model selection, GridSearchCV, the
checks of ``sklearn.utils.estimator_checks`` (each exclusion with its reason), and the warning
for data laid out channels first (aeon/sktime)."""

import warnings
from functools import partial

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone, is_clusterer, is_outlier_detector
from sklearn.model_selection import GridSearchCV
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import estimator_checks_generator, parametrize_with_checks

import ursa
from conftest import make_sines
from ursa.data import as_sequences
from ursa.data import ChannelsFirstWarning

# Tiny settings: each check fits several times, so a fit must take a few milliseconds.
QUIET = dict(verbose=False, device="cpu", random_state=0)
AUTOENCODER = ursa.SequenceAutoencoder(hidden_size=4, latent_dim=2, epochs=1, batch_size=32,
                                       **QUIET)
CLUSTERER = ursa.RecurrentClusterer(n_clusters=3, hidden_size=4, latent_dim=2, epochs=1,
                                    clustering_epochs=1, batch_size=32, **QUIET)
DETECTOR = ursa.SequenceAnomalyDetector(window=4, score_stride=2, hidden_size=4, latent_dim=2,
                                        epochs=1, batch_size=32, **QUIET)
GAN = ursa.RecurrentGAN(hidden_size=4, latent_dim=2, num_layers=1, iterations=2,
                        pretrain_iterations=2, batch_size=32, **QUIET)

# ------------------------------------------------------------------ check_estimator exclusions
# scikit-learn's checks feed 2-D tabular data. ursa reads a 2-D array as univariate sequences,
# (n_sequences, n_timesteps), and the anomaly detector as one (T, n_features) series; the
# exclusions below follow from that layout or from conventions ursa keeps on purpose.
COMMON = {
    "check_complex_data": "complex input raises TypeError naming the argument (ursa's rule for "
                          "a wrong dtype); the check wants ValueError",
    "check_estimators_empty_data_messages": "an array without columns is refused in ursa's "
                                            "words (the shape, and that a sequence needs a time "
                                            "step and a feature), not '0 feature(s)'",
}
UNIVARIATE_2D = {
    "check_n_features_in": "a 2-D array is (n_sequences, n_timesteps), univariate: "
                           "n_features_in_ is 1, not the number of columns",
    "check_n_features_in_after_fitting": "a 2-D array is univariate sequences: fewer columns "
                                         "are shorter sequences, which are valid, not fewer "
                                         "features",
    "check_transformer_general": "it expects transform to refuse one column fewer; for ursa "
                                 "that is the same sequences one time step shorter (valid)",
}
FLOAT32_ROUNDING = ("the networks compute in float32 and a batch of another size or order "
                    "rounds differently (about 1e-7 relative), beyond the check's rtol=1e-7")
GAN_CONDITIONS = ("the check fits with y, which a GAN takes as conditions (class labels); "
                  "scoring then needs y, which the check does not pass")
EXPECTED_FAILED = {
    "SequenceAutoencoder": {**COMMON, **UNIVARIATE_2D,
                            "check_methods_subset_invariance": FLOAT32_ROUNDING},
    "RecurrentClusterer": {**COMMON, **UNIVARIATE_2D},
    "SequenceAnomalyDetector": {
        **COMMON,
        "check_n_features_in_after_fitting": "a series with other features raises ValueError "
                                             "in ursa's words (features per time step and the "
                                             "fix), not 'X has k features, but ...'",
        "check_outlier_contamination": "contamination is validated by ursa's own constraints "
                                       "(ursa._params.Interval, (0, 0.5]), which the check "
                                       "does not recognise",
        "check_outliers_fit_predict": "PyOD's convention: predict and fit_predict flag 1 "
                                      "(anomaly) / 0 (normal), not scikit-learn's -1 / 1",
        "check_outliers_train": "PyOD's convention (0/1 flags, decision_function higher = more "
                                "abnormal, no offset_); and X.tolist() is a list of series of "
                                "two steps, shorter than the window",
        "check_methods_sample_order_invariance": "a 2-D array is one series: its rows are time "
                                                 "steps, and reordering them changes the series",
        "check_methods_subset_invariance": "a 2-D array is one series: a single row is a series "
                                           "shorter than the window",
        "check_fit2d_1sample": "one row is a series of one time step, shorter than the window: "
                               "refused with a message about time steps and the window",
        "check_fit1d": "a 1-D array is one univariate series, a valid input",
        "check_fit2d_predict1d": "a 1-D array is one univariate series: for a multichannel "
                                 "model the error names the feature count, not 'Reshape'",
    },
    "RecurrentGAN": {
        **COMMON, **UNIVARIATE_2D,
        "check_methods_sample_order_invariance": FLOAT32_ROUNDING,
        "check_methods_subset_invariance": GAN_CONDITIONS,
        "check_estimators_dtypes": GAN_CONDITIONS,
        "check_estimators_pickle": GAN_CONDITIONS,
        "check_dict_unchanged": GAN_CONDITIONS,
        "check_fit_idempotent": GAN_CONDITIONS,
        "check_transformer_data_not_an_array": "conditions y must be a sequence (with a length); "
                                               "the check's array wrapper has none",
    },
}


def expected_failed_checks(estimator):
    return EXPECTED_FAILED[type(estimator).__name__]


@pytest.mark.filterwarnings("ignore:Possible mode collapse")  # two GAN iterations
@parametrize_with_checks([AUTOENCODER, CLUSTERER, DETECTOR, GAN],
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("est", [AUTOENCODER, CLUSTERER, DETECTOR, GAN],
                         ids=lambda e: type(e).__name__)
def test_every_exclusion_names_a_check_and_gives_a_reason(est):
    names = {(c.func if isinstance(c, partial) else c).__name__
             for _, c in estimator_checks_generator(est, mark=None)}
    excluded = EXPECTED_FAILED[type(est).__name__]
    assert set(excluded) <= names
    assert all(isinstance(r, str) and len(r) > 20 for r in excluded.values())


# ------------------------------------------------------------------ mixins and tags
def test_estimator_types():
    assert is_clusterer(ursa.RecurrentClusterer())
    assert is_outlier_detector(ursa.SequenceAnomalyDetector())
    assert get_tags(ursa.SequenceAutoencoder()).transformer_tags is not None
    assert get_tags(ursa.RecurrentGAN()).estimator_type is None  # no "generator" type
    for est in (AUTOENCODER, CLUSTERER, DETECTOR, GAN):
        tags = get_tags(est)
        assert tags.input_tags.three_d_array and tags.input_tags.two_d_array
        assert tags.input_tags.allow_nan == (est in (AUTOENCODER, CLUSTERER))  # missing values
        assert not tags.target_tags.required
        assert not is_clusterer(est) or est is CLUSTERER
        assert not is_outlier_detector(est) or est is DETECTOR


@pytest.mark.filterwarnings("ignore:Possible mode collapse")
@pytest.mark.parametrize("est", [AUTOENCODER, CLUSTERER, GAN], ids=lambda e: type(e).__name__)
def test_transform_is_float32_and_leaves_the_estimator_alone(est):
    X = make_sines(12, 10, 2).astype(np.float64)
    est = clone(est).fit(X)
    assert get_tags(est).transformer_tags.preserves_dtype == ["float32"]
    before = dict(vars(est))
    for _ in range(2):
        out = est.transform(X)
    assert out.dtype == np.float32
    assert vars(est).keys() == before.keys()
    assert all(vars(est)[k] is v for k, v in before.items())


# ------------------------------------------------------------------ score
def test_autoencoder_score_is_negative_mean_error_and_prefers_familiar_data():
    X = make_sines(32, 16, 2)
    ae = clone(AUTOENCODER).set_params(epochs=5, hidden_size=8).fit(X)
    score = ae.score(X)
    assert isinstance(score, float)
    assert score == pytest.approx(-ae.decision_function(X).mean())
    noisy = X + np.random.default_rng(0).normal(0, 2.0, X.shape).astype(np.float32)
    assert ae.score(noisy) < score


def test_clusterer_score_is_assignment_confidence():
    X = make_sines(24, 12, 1)
    model = clone(CLUSTERER).fit(X)
    q = model.predict_proba(X)
    score = model.score(X)
    assert score == pytest.approx(np.log(q.max(1).astype(np.float64)).mean())
    assert np.log(1 / model.n_clusters) <= score <= 0.0


def test_detector_score_and_fit_predict():
    t = np.arange(400)
    series = np.sin(2 * np.pi * t / 20)[:, None]
    det = clone(DETECTOR).set_params(window=8, epochs=3, hidden_size=8)
    flags = det.fit_predict(series)
    np.testing.assert_array_equal(flags, det.predict(series))
    np.testing.assert_array_equal(flags, det.labels_)
    assert det.score(series) == pytest.approx(-det.decision_function(series).mean())
    spiky = series.copy()
    spiky[::25] += 5.0
    assert det.score(spiky) < det.score(series)
    # several series, as a list and as a NaN-padded 3-D array: flags laid out like the scores
    two = [series[:300], series[:200]]
    flags = det.fit_predict(two)
    assert [len(f) for f in flags] == [300, 200]
    padded = np.full((2, 300, 1), np.nan)
    padded[0], padded[1, :200] = two[0], two[1]
    flags = det.fit_predict(padded)
    assert flags.shape == (2, 300) and (flags[1, 200:] == -1).all()
    np.testing.assert_array_equal(flags, det.predict(padded))
    scores = det.decision_function(padded)
    assert det.score(padded) == pytest.approx(-np.nanmean(scores))


def test_grid_search_on_the_autoencoder():
    X = make_sines(24, 10, 2)
    search = GridSearchCV(ursa.SequenceAutoencoder(epochs=2, hidden_size=4, **QUIET),
                          {"latent_dim": [2, 4]}, cv=2).fit(X)
    assert search.best_params_["latent_dim"] in (2, 4)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert (search.cv_results_["mean_test_score"] < 0).all()
    assert search.best_estimator_.transform(X).shape == (24, search.best_params_["latent_dim"])
    assert search.score(X) == search.best_estimator_.score(X)


def test_grid_search_on_the_clusterer():
    X = make_sines(24, 10, 1)
    search = GridSearchCV(clone(CLUSTERER).set_params(n_clusters=2), {"gamma": [0.5, 1.0]},
                          cv=2).fit(X)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.predict(X).shape == (24,)


# ------------------------------------------------------------------ input checks
def test_sparse_input_is_refused_by_name():
    with pytest.raises(TypeError, match=r"X is a sparse csr_matrix: sparse input is not "
                                        r"supported .* X\.toarray\(\)"):
        as_sequences(sparse.csr_matrix(np.ones((3, 4))))


def test_object_arrays_of_numbers_are_read_as_numbers():
    X = make_sines(4, 6, 2).astype(object)
    np.testing.assert_array_equal(as_sequences(X).values, make_sines(4, 6, 2))
    X[1, 2, 0] = None
    with pytest.raises(TypeError, match=r"None at index \(1, 2, 0\)"):
        as_sequences(X)
    X[1, 2, 0] = "a"
    with pytest.raises(TypeError, match=r"does not convert to numbers"):
        as_sequences(X)


# ------------------------------------------------------------------ aeon / sktime layout
def _aeon_like(n_cases, n_channels, n_timepoints, seed=0):
    """Smooth series laid out (n_cases, n_channels, n_timepoints), as aeon lays them out."""
    return make_sines(n_cases, n_timepoints, n_channels, seed).transpose(0, 2, 1)


@pytest.mark.parametrize("X", [
    _aeon_like(100, 3, 500),
    np.random.default_rng(0).normal(size=(100, 3, 500)),  # 3 "steps": channels, whatever values
    _aeon_like(20, 1, 60),
    _aeon_like(20, 8, 200),  # more channels: the values change smoothly along the last axis
], ids=["3x500", "3x500-noise", "1x60", "8x200"])
def test_channels_first_layout_warns(X):
    with pytest.warns(ChannelsFirstWarning) as record:
        as_sequences(X)
    message = str(record[0].message)
    assert "(n_sequences, n_timesteps, n_features)" in message
    assert "(n_cases, n_channels, n_timepoints)" in message
    assert "X.transpose(0, 2, 1)" in message
    assert record[0].filename == __file__  # points at the caller
    # the transposed array is read without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChannelsFirstWarning)
        assert as_sequences(X.transpose(0, 2, 1)).n_features == X.shape[1]


@pytest.mark.parametrize("X", [
    make_sines(100, 500, 3),
    make_sines(20, 50, 3),
    make_sines(20, 4, 3),
    make_sines(20, 10, 30),  # wide but not 4 times as wide
    np.random.default_rng(0).normal(size=(20, 10, 300)),  # embeddings: no smoothness
    make_sines(20, 12, 1)[:, :, 0],  # 2-D univariate
], ids=["500x3", "50x3", "4x3", "10x30", "10x300-embeddings", "2d"])
def test_ordinary_layout_does_not_warn(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChannelsFirstWarning)
        as_sequences(X)


def test_channels_first_list_warns_and_estimators_warn():
    items = [x for x in _aeon_like(10, 3, 80)]
    with pytest.warns(ChannelsFirstWarning, match=r"\[x\.T for x in X\]"):
        as_sequences(items)
    with pytest.warns(ChannelsFirstWarning), pytest.raises(ValueError, match=r"x\.T for x in X"):
        as_sequences([items[0], items[1][:, :70]])  # unequal lengths: features differ
    with pytest.warns(ChannelsFirstWarning, match="aeon/sktime") as record:
        clone(AUTOENCODER).fit(_aeon_like(8, 2, 40))
    assert record[0].filename == __file__
