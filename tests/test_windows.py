"""Tests for sliding windows and the mapping from window values back to time steps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ursa.data._windows import sliding_windows, window_starts, windows_to_steps


# ------------------------------------------------------------------------------------------
# naive references


def naive_windows(series, window, stride):
    series = np.asarray(series)
    if series.ndim == 1:
        series = series[:, None]
    out = []
    start = 0
    while start + window <= len(series):
        out.append(series[start : start + window])
        start += stride
    return np.array(out).reshape(len(out), window, series.shape[1])


def naive_steps(values, n_timesteps, window, stride, reduce):
    values = np.asarray(values, dtype=float)
    n_windows = len(values)
    covering = [[] for _ in range(n_timesteps)]  # (window index, value) per step
    for k in range(n_windows):
        for j in range(window):
            v = values[k] if values.ndim == 1 else values[k, j]
            covering[k * stride + j].append((k, v))
    out = np.full(n_timesteps, np.nan)
    for t, items in enumerate(covering):
        if not items:
            continue
        vals = [v for _, v in items]
        if reduce == "mean":
            out[t] = sum(vals) / len(vals)
        elif reduce == "max":
            out[t] = max(vals)
        else:
            out[t] = max(items)[1]  # highest window index = most recent
    return out


# ------------------------------------------------------------------------------------------
# sliding_windows


def test_shape_univariate_and_values():
    x = np.arange(10.0)
    w = sliding_windows(x, 4)
    assert w.shape == (7, 4, 1)
    np.testing.assert_array_equal(w[0, :, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(w[-1, :, 0], [6, 7, 8, 9])


def test_shape_multivariate_and_stride():
    x = np.arange(30.0).reshape(10, 3)
    w = sliding_windows(x, 4, stride=3)
    assert w.shape == (3, 4, 3)  # starts 0, 3, 6
    np.testing.assert_array_equal(w[1], x[3:7])
    np.testing.assert_array_equal(w[2], x[6:10])


def test_stride_larger_than_window_and_dropped_tail():
    x = np.arange(11.0)
    w = sliding_windows(x, 2, stride=4)  # starts 0, 4, 8; steps 10 in no window
    assert w.shape == (3, 2, 1)
    np.testing.assert_array_equal(w[:, :, 0], [[0, 1], [4, 5], [8, 9]])


def test_window_equal_to_length_gives_one_window():
    x = np.arange(5.0)
    w = sliding_windows(x, 5, stride=7)
    assert w.shape == (1, 5, 1)
    np.testing.assert_array_equal(w[0, :, 0], x)


def test_result_is_view_and_keeps_dtype():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    w = sliding_windows(x, 3)
    assert w.dtype == np.float32
    assert np.shares_memory(w, x)
    assert not w.flags.writeable
    w2 = np.array(w)
    w2[0, 0, 0] = -1.0  # a copy is writeable
    assert x[0, 0] == 0.0


def test_accepts_lists_and_integers():
    w = sliding_windows([1, 2, 3, 4], 2, stride=2)
    np.testing.assert_array_equal(w[:, :, 0], [[1, 2], [3, 4]])
    w = sliding_windows(np.arange(6), np.int64(3), stride=np.int32(3))
    assert w.shape == (2, 3, 1)


@settings(max_examples=150, deadline=None)
@given(
    n_timesteps=st.integers(1, 40),
    n_features=st.integers(1, 3),
    data=st.data(),
)
def test_matches_naive_loop(n_timesteps, n_features, data):
    window = data.draw(st.integers(1, n_timesteps))
    stride = data.draw(st.integers(1, n_timesteps + 2))
    x = np.random.default_rng(n_timesteps * 7 + window).normal(size=(n_timesteps, n_features))
    w = sliding_windows(x, window, stride)
    expected = naive_windows(x, window, stride)
    assert w.shape == ((n_timesteps - window) // stride + 1, window, n_features)
    np.testing.assert_array_equal(w, expected)
    np.testing.assert_array_equal(window_starts(n_timesteps, window, stride),
                                  np.arange(len(expected)) * stride)


@pytest.mark.parametrize(
    "series, window, stride, exc, words",
    [
        (np.arange(5.0), 6, 1, ValueError, ["window=6", "5 time steps", "window <= 5"]),
        (np.arange(5.0), 0, 1, ValueError, ["window", ">= 1"]),
        (np.arange(5.0), 2.0, 1, TypeError, ["window", "integer"]),
        (np.arange(5.0), True, 1, TypeError, ["window"]),
        (np.arange(5.0), 2, 0, ValueError, ["stride", ">= 1"]),
        (np.arange(5.0), 2, 1.5, TypeError, ["stride"]),
        (np.zeros((2, 3, 4)), 2, 1, ValueError, ["series", "3 dimensions"]),
        (np.zeros(0), 1, 1, ValueError, ["series", "shape (0,"]),
        (np.array(["a", "b"]), 1, 1, TypeError, ["series", "numbers"]),
        (np.array([1.0, np.nan, 2.0]), 2, 1, ValueError, ["series", "step 1"]),
        (np.array([[1.0, 2.0], [np.inf, 0.0]]), 1, 1, ValueError, ["step 1", "feature 0"]),
    ],
)
def test_sliding_windows_errors(series, window, stride, exc, words):
    with pytest.raises(exc) as info:
        sliding_windows(series, window, stride)
    for word in words:
        assert word in str(info.value)


def test_window_starts():
    np.testing.assert_array_equal(window_starts(10, 4, 3), [0, 3, 6])
    np.testing.assert_array_equal(window_starts(10, 10), [0])
    assert window_starts(10, 1).dtype == np.int64
    with pytest.raises(ValueError, match="window=11"):
        window_starts(10, 11)
    with pytest.raises(ValueError, match="n_timesteps"):
        window_starts(0, 1)


# ------------------------------------------------------------------------------------------
# windows_to_steps


def test_mean_one_value_per_window():
    out = windows_to_steps([0.0, 1.0, 2.0], n_timesteps=10, window=4, stride=3)
    np.testing.assert_allclose(out, [0, 0, 0, 0.5, 1, 1, 1.5, 2, 2, 2])
    assert out.dtype == np.float64


def test_max_and_last_one_value_per_window():
    values = [5.0, 1.0, 3.0]
    np.testing.assert_array_equal(
        windows_to_steps(values, 10, 4, 3, reduce="max"), [5, 5, 5, 5, 1, 1, 3, 3, 3, 3]
    )
    np.testing.assert_array_equal(
        windows_to_steps(values, 10, 4, 3, reduce="last"), [5, 5, 5, 1, 1, 1, 3, 3, 3, 3]
    )


def test_per_step_values():
    # stride 1, window 3, T 5: windows [0..2], [1..3], [2..4]
    values = np.array([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0], [100.0, 200.0, 300.0]])
    np.testing.assert_allclose(
        windows_to_steps(values, 5, 3, reduce="mean"), [1, 6, 41, 115, 300]
    )
    np.testing.assert_array_equal(windows_to_steps(values, 5, 3, reduce="max"),
                                  [1, 10, 100, 200, 300])
    np.testing.assert_array_equal(windows_to_steps(values, 5, 3, reduce="last"),
                                  [1, 10, 100, 200, 300])
    np.testing.assert_array_equal(windows_to_steps(-values, 5, 3, reduce="last"),
                                  [-1, -10, -100, -200, -300])
    np.testing.assert_array_equal(windows_to_steps(-values, 5, 3, reduce="max"),
                                  [-1, -2, -3, -30, -300])


def test_uncovered_tail_is_nan():
    out = windows_to_steps([1.0, 2.0], n_timesteps=9, window=4, stride=3)  # starts 0, 3
    assert np.isnan(out[7:]).all() and not np.isnan(out[:7]).any()
    for reduce in ("max", "last"):
        out = windows_to_steps([1.0, 2.0], 9, 4, 3, reduce=reduce)
        assert np.isnan(out[7:]).all() and not np.isnan(out[:7]).any()


def test_gaps_when_stride_exceeds_window_are_nan():
    out = windows_to_steps([1.0, 2.0], n_timesteps=7, window=2, stride=5)
    np.testing.assert_array_equal(np.isnan(out), [0, 0, 1, 1, 1, 0, 0])


def test_round_trip_with_sliding_windows():
    x = np.random.default_rng(0).normal(size=(50, 2))
    w = sliding_windows(x, 8, stride=2)  # (22, 8, 2); 50 - 8 = 42 is even: full cover
    per_step = w[:, :, 0]
    for reduce in ("mean", "max", "last"):
        np.testing.assert_allclose(windows_to_steps(per_step, 50, 8, 2, reduce=reduce), x[:, 0])


@settings(max_examples=150, deadline=None)
@given(
    n_timesteps=st.integers(1, 30),
    per_step=st.booleans(),
    reduce=st.sampled_from(["mean", "max", "last"]),
    data=st.data(),
)
def test_windows_to_steps_matches_naive(n_timesteps, per_step, reduce, data):
    window = data.draw(st.integers(1, n_timesteps))
    stride = data.draw(st.integers(1, n_timesteps + 2))
    n_windows = (n_timesteps - window) // stride + 1
    rng = np.random.default_rng(n_timesteps * 1000 + window * 10 + stride)
    shape = (n_windows, window) if per_step else (n_windows,)
    values = rng.normal(size=shape)
    out = windows_to_steps(values, n_timesteps, window, stride, reduce=reduce)
    expected = naive_steps(values, n_timesteps, window, stride, reduce)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert np.isnan(out).sum() == np.isnan(expected).sum()


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        (dict(window_values=np.zeros(3), n_timesteps=10, window=4, stride=2),
         ValueError, ["3 windows", "give 4 windows", "stride=2"]),
        (dict(window_values=np.zeros((4, 3)), n_timesteps=10, window=4, stride=2),
         ValueError, ["(n_windows, window=4)", "(4, 3)"]),
        (dict(window_values=np.zeros((4, 4, 1)), n_timesteps=10, window=4, stride=2),
         ValueError, ["shape"]),
        (dict(window_values=np.zeros(4), n_timesteps=10, window=4, stride=2, reduce="median"),
         ValueError, ["reduce", "'mean'", "'median'"]),
        (dict(window_values=np.array([0.0, np.nan, 0.0, 0.0]), n_timesteps=10, window=4,
              stride=2), ValueError, ["window_values[1]", "finite"]),
        (dict(window_values=np.array(["a"] * 4), n_timesteps=10, window=4, stride=2),
         TypeError, ["window_values"]),
        (dict(window_values=np.zeros(1), n_timesteps=3, window=4), ValueError, ["window=4"]),
        (dict(window_values=np.zeros(1), n_timesteps=3, window=1, stride=0), ValueError,
         ["stride"]),
    ],
)
def test_windows_to_steps_errors(kwargs, exc, words):
    with pytest.raises(exc) as info:
        windows_to_steps(**kwargs)
    for word in words:
        assert word in str(info.value)
