"""ursa.data.as_series / restore_series_layout / as_points: the validation of long series and
stream chunks that anomaly scorers use."""

import numpy as np
import pytest
import torch

import ursa
from ursa.data import Sequences, as_points, as_series, restore_series_layout


def test_exported_from_data_package():
    for name in ("as_series", "as_points", "restore_series_layout"):
        assert name in ursa.data.__all__


def test_one_series_1d_and_2d():
    series, layout, lengths = as_series(np.arange(5))
    assert layout == "single" and lengths.tolist() == [5]
    assert series[0].shape == (5, 1) and series[0].dtype == np.float32
    series, layout, _ = as_series(np.ones((7, 3)))
    assert layout == "single" and series[0].shape == (7, 3)
    series, layout, _ = as_series(torch.arange(4.0, requires_grad=True))
    assert layout == "single" and series[0][:, 0].tolist() == [0, 1, 2, 3]


def test_several_series_as_list_3d_and_sequences():
    series, layout, lengths = as_series([np.arange(6.0), np.arange(4.0)])
    assert layout == "list" and lengths.tolist() == [6, 4]
    assert [s.shape for s in series] == [(6, 1), (4, 1)]
    padded = np.full((2, 6, 2), np.nan)
    padded[0], padded[1, :3] = 1.0, 2.0
    series, layout, lengths = as_series(padded)
    assert layout == "3d" and lengths.tolist() == [6, 3]
    assert (series[1] == 2.0).all()
    seqs = Sequences(np.zeros((2, 5, 1), dtype=np.float32), np.array([5, 2]))
    assert as_series(seqs)[1] == "list"


def test_restore_series_layout_gives_back_the_callers_layout():
    values = [np.arange(6.0), np.arange(3.0)]
    lengths = np.array([6, 3])
    assert restore_series_layout(values[:1], "single", lengths[:1]) is values[0]
    assert restore_series_layout(values, "list", lengths) is values
    out = restore_series_layout(values, "3d", lengths)
    assert out.shape == (2, 6) and np.isnan(out[1, 3:]).all()
    np.testing.assert_array_equal(out[1, :3], values[1])


def test_series_errors_name_the_argument_position_and_fix():
    with pytest.raises(TypeError, match=r"X must be one series.*got str"):
        as_series("series.csv")
    with pytest.raises(ValueError, match=r"got 4 dimensions.*pass a list"):
        as_series(np.zeros((2, 3, 4, 1)))
    bad = np.zeros((10, 2))
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN at step 4, feature 1"):
        as_series(bad)
    bad[4, 1] = np.inf
    with pytest.raises(ValueError, match=r"X contains an infinite value at step 4, feature 1"):
        as_series(bad)
    with pytest.raises(ValueError, match=r"X has shape \(0, 1\)"):
        as_series(np.zeros(0))
    with pytest.raises(ValueError, match=r"X has 2 features per time step.*fitted with 3"):
        as_series(np.zeros((10, 2)), n_features=3)
    with pytest.raises(ValueError, match=r"X has 5 time steps, fewer than window=8"):
        as_series(np.zeros(5), min_length=8)
    with pytest.raises(ValueError, match=r"series\[1\] has 5 time steps, fewer than window=8"):
        as_series([np.zeros(9), np.zeros(5)], name="series", min_length=8)


def test_a_single_series_has_no_padding():
    """Trailing NaN in one series is a missing value, not padding: refused, never trimmed."""
    s = np.arange(10.0)
    s[-2:] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN at step 8"):
        as_series(s)


def test_as_points():
    assert as_points([1.0, 2.0], 1).shape == (2, 1)
    assert as_points(np.ones((3, 2)), 2).dtype == np.float32
    with pytest.raises(ValueError,
                       match=r"points must have shape \(n_points, 2\).*points\[None, :\]"):
        as_points(np.ones(2), 2)
    with pytest.raises(ValueError, match=r"row 1, feature 0 \(point 11 of the stream\)"):
        as_points([0.0, np.inf], 1, offset=10)
    with pytest.raises(TypeError, match=r"points must hold numbers"):
        as_points(np.array(["a"]), 1)
    with pytest.raises(TypeError, match=r"points must be an array of numbers, got NoneType"):
        as_points(None, 1)
