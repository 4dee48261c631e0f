"""Property-based tests (hypothesis) of bad and odd data at every public boundary.

Random shapes, dtypes, NaN/inf patterns, lengths 0, 1 and long, huge and tiny magnitudes and
constant series go to the data layer and to every registered estimator's fit and inference
methods. Every input either works, giving finite outputs on every valid step, or raises
ValueError/TypeError with a message; never a silent NaN or inf, never another exception.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ursa.data import Sequences, as_sequences
from conftest import make_sines
from estimator_registry import ESTIMATORS
from reliability_log import record

IDS = [cls.__name__ for cls, _, _ in ESTIMATORS]
def PROPERTY(max_examples):
    return settings(max_examples=max_examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

DTYPES = ["float16", "float32", "float64", "int8", "int64", "uint8", "bool", "complex64",
          "object", "str"]
MAGNITUDES = {"unit": 1.0, "constant": 0.0, "huge": 1e30, "tiny": 1e-30, "float64-only": 1e300}


MISTAKES = ["none", "none", "none", "none", "padding", "padding", "empty", "zero-steps",
            "zero-features", "wrong-dtype", "nan-inside", "inf", "all-nan-row", "features"]


@st.composite
def sequence_data(draw, max_n=5, max_t=12, n_features=None, dtypes=DTYPES):
    """Random data in every layout the data layer accepts, half of it with one mistake."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    mistake = draw(st.sampled_from(MISTAKES))
    n = 0 if mistake == "empty" else draw(st.integers(1, max_n))
    t = 0 if mistake == "zero-steps" else draw(st.sampled_from([1, 2, 3, 5, max_t, 200]))
    c = n_features if n_features is not None else draw(st.integers(1, 3))
    if mistake == "zero-features":
        c = 0
    elif mistake == "features":
        c += 1
    dtype = draw(st.sampled_from(dtypes if mistake == "wrong-dtype" else
                                 [d for d in dtypes if d not in ("complex64", "object", "str")]))
    magnitude = draw(st.sampled_from(sorted(MAGNITUDES)))
    values = rng.standard_normal((n, t, c)) * MAGNITUDES[magnitude]
    if magnitude == "constant":
        values += 3.0
    if n and t and c:
        i = rng.integers(n)
        if mistake == "padding":
            values[i, rng.integers(1, t + 1):] = np.nan
        elif mistake == "nan-inside":
            values[i, rng.integers(t), rng.integers(c)] = np.nan
        elif mistake == "inf":
            values[i, rng.integers(t), rng.integers(c)] = np.inf * rng.choice([-1, 1])
        elif mistake == "all-nan-row":
            values[i] = np.nan
    if dtype == "str":
        data = values.astype(str)
    elif dtype == "object":
        data = values.astype(object)
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            data = values.astype(dtype)
    layout = draw(st.sampled_from(["3d", "2d", "list", "list-1d"]))
    if layout == "2d" and c == 1:
        data = data[:, :, 0]
    elif layout.startswith("list"):
        lengths = rng.integers(1, t + 1, size=n) if t else np.zeros(n, dtype=int)
        data = [data[i, : lengths[i]] for i in range(n)]
        if layout == "list-1d" and c == 1:
            data = [x[:, 0] for x in data]
    return data


def valid_rows(X):
    """What the data layer makes of X, or None if it refuses it."""
    try:
        return as_sequences(X)
    except (ValueError, TypeError):
        return None


@PROPERTY(150)
@given(X=sequence_data())
def test_data_layer_accepts_or_refuses_clearly(X):
    try:
        seqs = as_sequences(X, name="X")
    except (ValueError, TypeError) as exc:
        assert "X" in str(exc) and len(str(exc)) > 20
        outcome = "refused"
    else:
        assert isinstance(seqs, Sequences) and seqs.values.dtype == np.float32
        assert np.isfinite(seqs.values).all()
        assert (seqs.lengths >= 1).all() and seqs.lengths.max() == seqs.max_length
        items = X if isinstance(X, list) else list(np.asarray(X, dtype=np.float64))
        for i, item in enumerate(items):
            item = np.asarray(item, dtype=np.float64).reshape(len(item), -1)
            n = seqs.lengths[i]
            np.testing.assert_allclose(seqs.values[i, :n], item[:n].astype(np.float32))
        outcome = "accepted"
    record("bad data: random shape/dtype/NaN/inf/magnitude/layout into ursa.data.as_sequences",
           1, "valid Sequences with finite values, or ValueError/TypeError naming X")
    assert outcome in ("accepted", "refused")


def finite_on_valid_steps(out, seqs):
    parts = out if isinstance(out, list) else [out]
    if isinstance(out, list) or out.ndim < 2 or out.shape[1] != seqs.max_length:
        return all(np.isfinite(np.asarray(p, dtype=float)).all() for p in parts)
    mask = seqs.mask()
    return bool(np.isfinite(out[mask]).all())


@pytest.fixture(scope="module", params=ESTIMATORS, ids=IDS)
def fitted(request):
    cls, params, outputs = request.param
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = cls(**params).fit(make_sines(16, 12, 2))
    return est, outputs


@PROPERTY(40)
@given(X=sequence_data(n_features=2))
def test_inference_methods_work_or_refuse_clearly(fitted, X):
    est, outputs = fitted
    for method in outputs(est, 1, 1, 1):
        try:
            out = getattr(est, method)(X)
        except (ValueError, TypeError) as exc:
            assert len(str(exc)) > 20, (method, str(exc))
            continue
        seqs = valid_rows(X if not getattr(outputs, "series_input", False) or not isinstance(
            X, np.ndarray) or X.ndim != 2 else [X])
        assert seqs is not None, f"{method} accepted input the data layer refuses"
        assert finite_on_valid_steps(out, seqs), f"{method} returned NaN/inf"
    record("bad data: random inputs to every inference method of every estimator",
           1, "finite outputs on valid steps, or ValueError/TypeError with a message")


@PROPERTY(6)
@given(X=sequence_data(max_n=6, max_t=10, n_features=2, dtypes=["float32", "float64", "int64"]))
def test_fit_works_or_refuses_clearly(fitted, X):
    est, outputs = fitted
    fresh = type(est)(**est.get_params())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fresh.fit(X)
    except (ValueError, TypeError) as exc:
        assert len(str(exc)) > 20
    else:
        assert all(np.isfinite(r["train_loss"]) for r in fresh.history_ if "train_loss" in r)
        first = next(iter(outputs(fresh, 1, 1, 1)))
        try:
            out = getattr(fresh, first)(X)
        except (ValueError, TypeError) as exc:
            assert len(str(exc)) > 20
        else:
            seqs = valid_rows(X) or valid_rows([X])
            assert finite_on_valid_steps(out, seqs), f"{first} returned NaN/inf after fit"
    record("bad data: random training sets (constant, huge, tiny, short, long) into fit",
           1, "a finite fit and finite outputs, or ValueError/TypeError with a message")
