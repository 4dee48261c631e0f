"""The shared estimator suite: every estimator in estimator_registry.ESTIMATORS must pass it."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import get_tags

import ursa
from conftest import make_sines, make_variable
from estimator_registry import ESTIMATORS

IDS = [cls.__name__ for cls, _, _ in ESTIMATORS]
CASES = pytest.mark.parametrize("cls, params, outputs", ESTIMATORS, ids=IDS)
CELLS = ["rnn", "gru", "lstm"]


def fitted(cls, params, X, **extra):
    return cls(**{**params, **extra}).fit(X)


def weights(est):
    return {k: v.clone() for k, v in est.network_.state_dict().items()}


@CASES
def test_get_params_set_params_clone(cls, params, outputs):
    est = cls(**params)
    got = est.get_params()
    for key, value in params.items():
        assert got[key] == value
    twin = clone(est)
    assert twin is not est and twin.get_params() == est.get_params()
    assert est.set_params(hidden_size=5) is est and est.hidden_size == 5
    with pytest.raises(ValueError, match="Invalid parameter"):
        est.set_params(no_such_parameter=1)


@CASES
def test_init_stores_parameters_only(cls, params, outputs):
    est = cls(**params)
    assert not [k for k in vars(est) if k.endswith("_")]


@CASES
def test_fit_returns_self_and_sets_state(cls, params, outputs):
    X = make_sines(24, 12, 2)
    est = cls(**params)
    assert est.fit(X) is est
    assert est.n_features_in_ == 2
    # n_iter_ counts epochs, or a GAN's adversarial iterations (its records span three phases)
    expected = params["iterations"] if "iterations" in params else len(est.history_)
    assert est.n_iter_ == expected >= 1
    assert all(np.isfinite(r["train_loss"]) for r in est.history_)


@CASES
@pytest.mark.parametrize("cell", CELLS)
def test_output_shapes_equal_length(cls, params, outputs, cell):
    X = make_sines(24, 12, 2)
    est = fitted(cls, params, X, cell=cell)
    for method, shape in outputs(est, 24, 12, 2).items():
        out = getattr(est, method)(X)
        assert out.shape == shape, method
        assert np.isfinite(out).all(), method


@CASES
@pytest.mark.parametrize("cell", CELLS)
def test_variable_length_list_and_nan_padding(cls, params, outputs, cell):
    X = make_variable(20, 15, 2)
    est = fitted(cls, params, X, cell=cell, bidirectional=True)
    lengths = [len(x) for x in X]
    padded = np.full((len(X), 15, 2), np.nan, dtype=np.float32)
    for i, x in enumerate(X):
        padded[i, : len(x)] = x
    for method, shape in outputs(est, len(X), 15, 2).items():
        from_list = getattr(est, method)(X)
        from_padded = getattr(est, method)(padded)
        if len(shape) >= 2 and shape[1] == 15:  # per-step output
            assert [len(o) for o in from_list] == lengths, method
            for i, n in enumerate(lengths):
                np.testing.assert_allclose(from_padded[i, :n], from_list[i], rtol=1e-5, atol=1e-6)
                assert np.isnan(from_padded[i, n:]).all()
        else:
            assert np.asarray(from_list).shape == shape
            np.testing.assert_allclose(from_list, from_padded, rtol=1e-5, atol=1e-6)


@CASES
def test_padding_does_not_change_outputs(cls, params, outputs):
    """A sequence scored alone or in a batch with longer ones gives the same result."""
    X = make_variable(12, 15, 2)
    est = fitted(cls, params, X, bidirectional=True)
    for method, shape in outputs(est, len(X), 15, 2).items():
        together = getattr(est, method)(X)
        alone = [getattr(est, method)([x])[0] for x in X]
        for a, b in zip(together, alone):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@CASES
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("variable_length", [False, True])
def test_save_load_round_trip(cls, params, outputs, cell, variable_length, tmp_path):
    X = make_variable(20, 12, 3) if variable_length else make_sines(20, 12, 3)
    est = fitted(cls, params, X, cell=cell)
    path = tmp_path / "model.ursa"
    assert est.save(path) == path
    loaded = ursa.load(path)
    assert type(loaded) is cls
    assert loaded.get_params() == {**est.get_params(), "callbacks": None}
    assert loaded.history_ == est.history_
    for method in outputs(est, 1, 1, 1):
        a, b = getattr(est, method)(X), getattr(loaded, method)(X)
        for x, y in zip(a, b) if variable_length else [(a, b)]:
            np.testing.assert_array_equal(x, y)


ENCODER_CASES = [case for case in ESTIMATORS if "encoder" in case[0]().get_params()]


@pytest.mark.parametrize("cls, params, outputs", ENCODER_CASES,
                         ids=[c[0].__name__ for c in ENCODER_CASES])
@pytest.mark.parametrize("encoder", ["conv-rnn", "rnn-attention", "conv-rnn-attention"])
def test_hybrid_encoders_ignore_padding_and_round_trip(cls, params, outputs, encoder, tmp_path):
    """Every estimator with an encoder takes every kind: padding changes no output, and a saved
    model gives the same outputs."""
    X = make_variable(12, 15, 2)
    est = fitted(cls, params, X, encoder=encoder, bidirectional=True)
    loaded = ursa.load(est.save(tmp_path / "model.ursa"))
    assert loaded.encoder == encoder
    for method in outputs(est, len(X), 15, 2):
        together = getattr(est, method)(X)
        alone = [getattr(est, method)([x])[0] for x in X]
        for a, b in zip(together, alone):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        for a, b in zip(together, getattr(loaded, method)(X)):
            np.testing.assert_array_equal(a, b)


@CASES
def test_inference_leaves_the_estimator_unchanged(cls, params, outputs):
    """scikit-learn's contract: predict / transform / score change no attribute."""
    X = make_variable(12, 15, 2)
    padded = np.full((len(X), 15, 2), np.nan, dtype=np.float32)
    for i, x in enumerate(X):
        padded[i, : len(x)] = x
    est = fitted(cls, params, X)
    before = dict(vars(est))
    methods = list(outputs(est, 1, 1, 1)) + (["score"] if hasattr(est, "score") else [])
    for method in methods:
        for data in (X, padded):
            getattr(est, method)(data)
    assert vars(est).keys() == before.keys()
    assert all(vars(est)[k] is v for k, v in before.items())


@CASES
def test_score_is_a_float_where_defined(cls, params, outputs):
    est = fitted(cls, params, make_sines(16, 10, 2))
    if not hasattr(est, "score"):
        pytest.skip(f"{cls.__name__} has no score (no higher-is-better criterion)")
    for data in (make_sines(6, 10, 2), make_variable(6, 10, 2)):
        value = est.score(data)
        assert isinstance(value, float) and np.isfinite(value)


@CASES
def test_same_seed_same_fit_bit_for_bit(cls, params, outputs):
    X = make_variable(20, 12, 2)
    a, b = fitted(cls, params, X), fitted(cls, params, X)
    wa, wb = weights(a), weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.history_[-1]["train_loss"] == b.history_[-1]["train_loss"]
    c = fitted(cls, params, X, random_state=1)
    assert not all(torch.equal(wa[k], weights(c)[k]) for k in wa)


@CASES
def test_fit_leaves_global_rng_alone(cls, params, outputs):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fitted(cls, params, make_sines(16, 8, 1))
    assert torch.equal(torch.rand(3), expected)


def _series_input(outputs) -> bool:
    """Long-series estimators (registry flag ``series_input``): 3-D input is several series,
    a 2-D array one (T, C) series and a 1-D array one univariate series."""
    return getattr(outputs, "series_input", False)


def _skip_valid_series(outputs, what):
    if what == "1-D array" and _series_input(outputs):
        pytest.skip("a 1-D array is one univariate series for long-series estimators")


@CASES
def test_univariate_2d_input(cls, params, outputs):
    X = make_sines(20, 10, 1)[:, :, 0]  # (n, T)
    if _series_input(outputs):
        X = list(X)  # for long-series estimators a 2-D array is one (T, C) series
    est = fitted(cls, params, X)
    assert est.n_features_in_ == 1
    for method, shape in outputs(est, 20, 10, 1).items():
        out = getattr(est, method)(X)
        assert len(out) == 20


@CASES
def test_not_fitted(cls, params, outputs):
    est = cls(**params)
    for method in outputs(est, 1, 1, 1):
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(est, method)(make_sines(2, 5, 1))
    with pytest.raises(NotFittedError):
        est.save("never-written.ursa")


def _nan_inside():
    X = make_sines(6, 10, 2)
    X[3, 5, 1] = np.nan
    return X


def _inf_inside():
    X = make_sines(6, 10, 2)
    X[2, 4, 0] = np.inf
    return X


def _all_nan_row():
    X = make_sines(6, 10, 2)
    X[4] = np.nan
    return X


# (description, what to call, exception, pattern that the message must contain)
BAD_INPUTS = [
    ("4-D array", lambda: np.zeros((2, 3, 4, 5)), ValueError, r"3 dimensions .*got 4"),
    ("1-D array", lambda: np.zeros(10), ValueError, r"got 1 with shape \(10,\)"),
    ("no sequences", lambda: np.zeros((0, 10, 2)), ValueError, r"X is empty"),
    ("empty list", lambda: [], ValueError, r"X is empty"),
    ("NaN inside a sequence", _nan_inside, ValueError, r"X\[3\] contains NaN at step 5, feature 1"),
    ("inf", _inf_inside, ValueError, r"X\[2\] contains an infinite value at step 4"),
    ("zero-length sequence", lambda: [np.ones((5, 2)), np.ones((0, 2))], ValueError,
     r"X\[1\] has 0 valid time steps"),
    ("all-NaN sequence", _all_nan_row, ValueError, r"X\[4\] has 0 valid time steps"),
    ("string dtype", lambda: np.array([["a", "b"], ["c", "d"]]), TypeError, r"must hold numbers"),
    ("object dtype", lambda: np.array([[1, None], [2, 3]], dtype=object), TypeError,
     r"must hold numbers"),
    ("complex dtype", lambda: np.ones((3, 4), dtype=complex), TypeError, r"real numbers"),
    ("mixed feature counts", lambda: [np.ones((5, 2)), np.ones((6, 3))], ValueError,
     r"X\[1\] has 3 features but X\[0\] has 2"),
    ("3-D list item", lambda: [np.ones((5, 2)), np.ones((2, 5, 2))], ValueError,
     r"X\[1\] must have shape \(T_i,\) or \(T_i, n_features\)"),
    ("string instead of data", lambda: "data.csv", TypeError, r"got str"),
    ("None list item", lambda: [np.ones((5, 2)), None], TypeError, r"X\[1\] must be an array"),
    ("zero features", lambda: np.zeros((3, 10, 0)), ValueError, r"at least one time step and one feature"),
    ("ragged nested list", lambda: [[[1.0, 2.0], [3.0]]], ValueError, r"X\[0\] is ragged"),
]


def _skip_valid_input(est, outputs, what):
    _skip_valid_series(outputs, what)
    if what == "NaN inside a sequence" and est._missing_values:
        pytest.skip("NaN inside a sequence is a missing value here (test_missing_values_are_read)")


@CASES
@pytest.mark.parametrize("what, make, error, pattern", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_to_fit(cls, params, outputs, what, make, error, pattern):
    _skip_valid_input(cls, outputs, what)
    with pytest.raises(error, match=pattern):
        cls(**params).fit(make())


@pytest.fixture(scope="module", params=ESTIMATORS, ids=IDS)
def fitted_estimator(request):
    cls, params, outputs = request.param
    return fitted(cls, params, make_sines(16, 10, 2)), outputs


@pytest.mark.parametrize("what, make, error, pattern", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_to_inference(fitted_estimator, what, make, error, pattern):
    est, outputs = fitted_estimator
    _skip_valid_input(est, outputs, what)
    for method in outputs(est, 1, 1, 1):
        with pytest.raises(error, match=pattern):
            getattr(est, method)(make())


@CASES
def test_missing_values_are_read_or_refused(cls, params, outputs):
    """NaN inside a sequence: a missing value for estimators that mask them (a fit and finite
    outputs of the usual shapes, whatever is missing), an error naming it for the others."""
    X = make_sines(16, 10, 2)
    X[3, 5, 1] = np.nan  # one feature of a step
    X[7, 2:4] = np.nan  # whole steps
    if not cls._missing_values:
        with pytest.raises(ValueError, match=r"X\[3\] contains NaN at step 5, feature 1"):
            cls(**params).fit(X)
        return
    assert get_tags(cls()).input_tags.allow_nan
    est = fitted(cls, params, X)
    for method, shape in outputs(est, 16, 10, 2).items():
        out = getattr(est, method)(X)
        assert out.shape == shape
        if method == "step_errors":  # no error where nothing was observed
            assert np.isnan(out[7, 2:4]).all() and np.isfinite(np.delete(out, 7, 0)).all()
        else:
            assert np.isfinite(out).all(), method


def test_feature_count_mismatch_at_inference(fitted_estimator):
    est, outputs = fitted_estimator
    for method in outputs(est, 1, 1, 1):
        with pytest.raises(ValueError, match=r"X has 3 features .* fitted with 2"):
            getattr(est, method)(make_sines(4, 10, 3))


BAD_PARAMS = [
    ("cell", "transformer", r"'cell' parameter .* one of 'rnn', 'gru', 'lstm'"),
    ("hidden_size", 0, r"'hidden_size' parameter .* integer >= 1"),
    ("latent_dim", 2.5, r"'latent_dim' parameter"),
    ("epochs", -1, r"'epochs' parameter"),
    ("learning_rate", 0.0, r"'learning_rate' parameter .* > 0"),
    ("dropout", 1.5, r"'dropout' parameter"),
    ("scaling", "robust", r"'scaling' parameter .* 'standard', 'minmax', None"),
    ("validation_fraction", 0.95, r"'validation_fraction' parameter"),
    ("device", 3, r"'device' parameter"),
    ("bidirectional", "yes", r"'bidirectional' parameter"),
]


@CASES
@pytest.mark.parametrize("name, value, pattern", BAD_PARAMS, ids=[b[0] for b in BAD_PARAMS])
def test_bad_parameters_rejected_at_fit(cls, params, outputs, name, value, pattern):
    if name not in cls._get_param_names():  # e.g. a GAN counts iterations, not epochs
        pytest.skip(f"{cls.__name__} has no {name!r} parameter")
    est = cls(**{**params, name: value})  # __init__ never validates (scikit-learn contract)
    with pytest.raises(ValueError, match=pattern):
        est.fit(make_sines(8, 6, 1))


def test_bad_input_table_is_large_enough():
    assert len(BAD_INPUTS) >= 12
    assert len({b[0] for b in BAD_INPUTS}) == len(BAD_INPUTS)
