"""The internal form, validation, layout restoration and scaling."""

import numpy as np
import pytest
import torch

from ursa.data import Sequences, SequenceScaler, as_sequences, restore_layout
from conftest import make_sines, make_variable


def test_3d_array_is_taken_as_is():
    X = make_sines(5, 7, 3)
    seqs = as_sequences(X)
    assert seqs.values.shape == (5, 7, 3) and seqs.values.dtype == np.float32
    assert seqs.lengths.tolist() == [7] * 5 and seqs.equal_length
    np.testing.assert_array_equal(seqs.values, X)


def test_2d_array_is_univariate():
    seqs = as_sequences(np.arange(12.0).reshape(3, 4))
    assert seqs.values.shape == (3, 4, 1)
    assert seqs.values[1, :, 0].tolist() == [4, 5, 6, 7]


def test_integer_and_bool_arrays_are_converted():
    assert as_sequences(np.ones((2, 3), dtype=np.int64)).values.dtype == np.float32
    assert as_sequences(np.ones((2, 3), dtype=bool)).values.sum() == 6


def test_list_of_1d_and_2d_arrays():
    seqs = as_sequences([np.arange(3.0), np.arange(5.0)])
    assert seqs.values.shape == (2, 5, 1) and seqs.lengths.tolist() == [3, 5]
    assert seqs.values[0, 3:].sum() == 0  # padding is zero
    seqs = as_sequences([np.ones((4, 2)), np.ones((2, 2))])
    assert seqs.values.shape == (2, 4, 2) and seqs.lengths.tolist() == [4, 2]


def test_nan_padding_gives_lengths():
    X = make_sines(3, 6, 2)
    X[0, 4:] = np.nan
    X[2, 1:] = np.nan
    seqs = as_sequences(X)
    assert seqs.lengths.tolist() == [4, 6, 1]
    assert np.isfinite(seqs.values).all()
    np.testing.assert_array_equal(seqs.values[0, :4], X[0, :4])


def test_torch_tensor_input():
    X = torch.randn(3, 5, 2)
    np.testing.assert_array_equal(as_sequences(X).values, X.numpy())
    assert as_sequences([X[0], X[1, :2]]).lengths.tolist() == [5, 2]


def test_partial_nan_step_inside_is_rejected_but_allowed_on_request():
    X = make_sines(2, 5, 2)
    X[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"X\[1\] contains NaN at step 2, feature 0"):
        as_sequences(X)
    assert np.isnan(as_sequences(X, allow_nan=True).values[1, 2, 0])


def test_argument_name_is_used_in_messages():
    with pytest.raises(ValueError, match=r"series\[0\] contains an infinite value"):
        as_sequences([np.array([1.0, np.inf])], name="series")


def test_feature_count_check():
    with pytest.raises(ValueError, match="fitted with 4"):
        as_sequences(make_sines(2, 5, 3), n_features=4)


def test_min_length():
    with pytest.raises(ValueError, match=r"X\[1\] has 1 valid time steps; at least 2"):
        as_sequences([np.ones(3), np.ones(1)], min_length=2)


def test_sequences_helpers():
    seqs = as_sequences(make_variable(6, 9, 2))
    sub = seqs.subset(np.array([0, 2]))
    assert sub.max_length == seqs.lengths[[0, 2]].max()
    assert [len(x) for x in seqs.to_list()] == seqs.lengths.tolist()
    padded = seqs.to_padded()
    assert np.isnan(padded[~seqs.mask()]).all() and np.isfinite(padded[seqs.mask()]).all()
    values, lengths = seqs.tensors()
    assert values.shape == seqs.values.shape and lengths.dtype == torch.int64


def test_restore_layout_matches_input_kind():
    X_list = make_variable(4, 8, 2)
    seqs = as_sequences(X_list)
    out = restore_layout(X_list, seqs.values, seqs.lengths)
    assert isinstance(out, list) and all(np.array_equal(a, b) for a, b in zip(out, X_list))
    X_1d = [np.arange(3.0), np.arange(5.0)]
    seqs = as_sequences(X_1d)
    assert [o.shape for o in restore_layout(X_1d, seqs.values, seqs.lengths)] == [(3,), (5,)]
    X2 = np.arange(8.0).reshape(2, 4)
    seqs = as_sequences(X2)
    assert restore_layout(X2, seqs.values, seqs.lengths).shape == (2, 4)


@pytest.mark.parametrize("method", ["standard", "minmax", None])
def test_scaler_round_trip_and_statistics(method):
    X = make_variable(10, 12, 3)
    X = [x * np.array([1.0, 10.0, 100.0]) + 5 for x in X]
    seqs = as_sequences(X)
    scaler = SequenceScaler(method).fit(seqs)
    scaled = scaler.transform(seqs)
    valid = scaled.values[seqs.mask()]
    if method == "standard":
        np.testing.assert_allclose(valid.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(valid.std(0), 1, atol=1e-4)
    elif method == "minmax":
        np.testing.assert_allclose(valid.min(0), 0, atol=1e-6)
        np.testing.assert_allclose(valid.max(0), 1, atol=1e-6)
    else:
        np.testing.assert_array_equal(scaled.values, seqs.values)
    back = scaler.inverse_transform(scaled)
    np.testing.assert_allclose(back.values, seqs.values, rtol=1e-5, atol=1e-4)
    # Padding never enters the statistics.
    padded_more = Sequences(np.pad(seqs.values, [(0, 0), (0, 5), (0, 0)], constant_values=99.0),
                            seqs.lengths)
    again = SequenceScaler(method).fit(padded_more)
    np.testing.assert_array_equal(again.offset_, scaler.offset_)


def test_constant_feature_is_only_shifted():
    seqs = as_sequences(np.full((4, 5, 1), 3.0))
    scaler = SequenceScaler("standard").fit(seqs)
    assert scaler.scale_[0] == 1.0
    np.testing.assert_array_equal(scaler.transform(seqs).values, 0.0)


def test_scaler_state_round_trip():
    seqs = as_sequences(make_sines(5, 6, 2))
    scaler = SequenceScaler("minmax").fit(seqs)
    config, arrays = scaler.get_state()
    twin = SequenceScaler.from_state(config, arrays)
    np.testing.assert_array_equal(twin.transform(seqs).values, scaler.transform(seqs).values)


def test_minmax_feature_range_maps_the_extremes_and_round_trips():
    X = [x * np.array([1.0, 10.0, 100.0]) + 5 for x in make_variable(10, 12, 3)]
    seqs = as_sequences(X)
    scaler = SequenceScaler("minmax", feature_range=(0.1, 0.9)).fit(seqs)
    valid = scaler.transform(seqs).values[seqs.mask()]
    np.testing.assert_allclose(valid.min(0), 0.1, atol=1e-6)
    np.testing.assert_allclose(valid.max(0), 0.9, atol=1e-6)
    # The same map as [0, 1] followed by the affine step onto [0.1, 0.9].
    plain = SequenceScaler("minmax").fit(seqs).transform(seqs).values[seqs.mask()]
    np.testing.assert_allclose(valid, 0.1 + 0.8 * plain, atol=1e-6)
    back = scaler.inverse_transform(scaler.transform(seqs))
    np.testing.assert_allclose(back.values, seqs.values, rtol=1e-5, atol=1e-4)
    config, arrays = scaler.get_state()
    assert config == {"method": "minmax", "feature_range": [0.1, 0.9]}
    twin = SequenceScaler.from_state(config, arrays)
    assert twin.feature_range == (0.1, 0.9)
    np.testing.assert_array_equal(twin.transform(seqs).values, scaler.transform(seqs).values)
    # A state written before feature_range existed holds the method only: [0, 1].
    assert SequenceScaler.from_state({"method": "minmax"}, arrays).feature_range == (0.0, 1.0)
    assert SequenceScaler("minmax").fit(seqs).get_state()[0] == {"method": "minmax"}


@pytest.mark.parametrize("method, feature_range, pattern", [
    ("minmax", (0.9, 0.1), "low < high"),
    ("minmax", (0.0, float("inf")), "finite"),
    ("minmax", (0.0,), "pair of numbers"),
    ("minmax", "ab", "pair of numbers"),
    ("minmax", 3, "pair of numbers"),
    ("standard", (0.1, 0.9), "applies to method='minmax' only"),
])
def test_bad_feature_range_is_refused(method, feature_range, pattern):
    with pytest.raises(ValueError, match=pattern):
        SequenceScaler(method, feature_range=feature_range)


def test_unknown_scaling():
    with pytest.raises(ValueError, match="scaling must be one of"):
        SequenceScaler("robust")


def test_values_beyond_float32_range_are_refused_not_turned_into_inf():
    X = np.ones((2, 3, 1))
    X[1, 2, 0] = 1e300
    with pytest.raises(ValueError, match=r"X holds 1e\+300 at index \(1, 2, 0\), beyond float32"):
        as_sequences(X)
    with pytest.raises(ValueError, match=r"X\[0\] holds .* beyond float32"):
        as_sequences([np.array([1.0, -1e200])])
    assert as_sequences(np.array([[1e38, -1e38]])).values.max() == np.float32(1e38)
