"""SequenceAnomalyDetector: behaviour on injected anomalies, streaming = batch, thresholds,
explanations, layouts, bounded memory and input checks."""

import numpy as np
import pytest

import ursa
from conftest import DEVICE
from ursa import SequenceAnomalyDetector
from ursa.estimators.anomaly import pot_threshold, score_starts

TINY = dict(window=16, score_stride=4, hidden_size=8, latent_dim=4, epochs=2, random_state=0,
            device=DEVICE)


def sine(n, period=40.0, seed=0, noise=0.05):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (np.sin(2 * np.pi * t / period) + noise * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def uni():
    return SequenceAnomalyDetector(**TINY).fit(sine(600))


@pytest.fixture(scope="module")
def multi():
    X = np.stack([sine(500, 40, 1), sine(500, 25, 2), sine(500, 60, 3)], axis=1)
    return SequenceAnomalyDetector(**TINY).fit(X), X


# ----------------------------------------------------------------------------- behaviour
def test_injected_spike_level_shift_and_frequency_change_rank_top():
    n = 4000
    train = sine(1500, seed=1)
    test = sine(n, seed=2)
    regions = {"spike": (1000, 1001), "level shift": (2000, 2100), "frequency": (3000, 3120)}
    test[1000] += 4.0
    test[2000:2100] += 1.5
    t = np.arange(3000, 3120)
    test[3000:3120] = np.sin(2 * np.pi * t / 10.0)  # period 40 -> 10
    det = SequenceAnomalyDetector(window=32, score_stride=4, hidden_size=24, latent_dim=8,
                                  epochs=8, stride=3, random_state=0, device=DEVICE).fit(train)
    scores = det.decision_function(test)
    normal = np.ones(n, dtype=bool)
    for a, b in regions.values():
        normal[max(0, a - 32) : b + 32] = False
    top = np.quantile(scores[normal], 0.99)
    for name, (a, b) in regions.items():
        assert scores[a:b].max() > top, name
    # and the highest-scored step overall lies in one of the injected regions
    best = int(np.argmax(scores))
    assert any(a - 32 <= best < b + 32 for a, b in regions.values())


# ----------------------------------------------------------------------------- streaming
def stream_all(det, series, chunks):
    scorer = det.stream()
    out, i = [], 0
    for k in chunks:
        out.append(scorer.update(series[i : i + k]))
        i += k
    assert i == len(series)
    out.append(scorer.flush())
    assert scorer.n_seen_ == 0  # flush resets for a new stream
    return np.concatenate(out)


@pytest.mark.parametrize("reduction", ["step", "window"])
@pytest.mark.parametrize("length", [403, 404])  # with and without an end-aligned tail window
def test_streaming_equals_batch_univariate(uni, reduction, length):
    det = uni.set_params(score_reduction=reduction)
    series = sine(length, seed=5)
    series[200] += 3.0
    assert (score_starts(length, 16, 4)[1] is None) == ((length - 16) % 4 == 0)
    batch = det.decision_function(series)
    rng = np.random.default_rng(0)
    chunks = []
    while sum(chunks) < length:
        chunks.append(int(min(rng.integers(1, 40), length - sum(chunks))))
    np.testing.assert_allclose(stream_all(det, series, chunks), batch, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stream_all(det, series, [1] * length), batch, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stream_all(det, series, [length]), batch, rtol=1e-5, atol=1e-7)
    det.set_params(score_reduction="window")


def test_streaming_multivariate_and_returns_final_scores_early(multi):
    det, X = multi
    batch = det.decision_function(X)
    scorer = det.stream()
    first = scorer.update(X[:100])
    # steps before the next grid window are final: 100 - 16 = 84 is the last start scored
    assert len(first) == 88 and scorer.n_emitted_ == 88
    np.testing.assert_allclose(first, batch[:88], rtol=1e-5, atol=1e-7)
    rest = np.concatenate([scorer.update(X[100:350]), scorer.update(X[350:]), scorer.flush()])
    np.testing.assert_allclose(np.r_[first, rest], batch, rtol=1e-5, atol=1e-7)


def test_streaming_buffer_stays_small(uni):
    scorer = uni.stream()
    for i in range(0, 3000, 7):
        scorer.update(sine(7, seed=i))
        assert len(scorer._buffer) <= uni.window + 7
        assert len(scorer._acc.counts) <= uni.window + uni.score_stride


def test_streaming_bad_input(uni, multi):
    scorer = uni.stream()
    with pytest.raises(ValueError, match=r"points contains a non-finite value at row 2, feature 0 "
                                         r"\(point 2 of the stream\)"):
        scorer.update([0.0, 1.0, np.nan])
    with pytest.raises(ValueError, match=r"fewer than window=16"):
        scorer.flush()
    with pytest.raises(ValueError, match=r"points must have shape \(n_points, 3\)"):
        multi[0].stream().update(np.zeros((5, 2)))
    with pytest.raises(TypeError, match=r"points must hold numbers"):
        scorer.update(np.array(["a", "b"]))


# ----------------------------------------------------------------------------- thresholds
def test_pyod_attributes_and_predict(uni):
    n_train = 600
    assert uni.decision_scores_.shape == (n_train,)
    assert np.isfinite(uni.decision_scores_).all()
    assert uni.labels_.shape == (n_train,)
    assert set(np.unique(uni.labels_)) <= {0, 1}
    # The default threshold (POT) flags little of a clean training series, unlike PyOD's
    # contamination rule, which flags its share of any series.
    assert uni.threshold == "pot" and uni.labels_.mean() < 0.02
    series = sine(300, seed=3)
    flags = uni.predict(series)
    expected = (uni.decision_function(series) > uni.threshold_).astype(int)
    np.testing.assert_array_equal(flags, expected)
    np.testing.assert_allclose(uni.score_samples(series), -uni.decision_function(series))


def test_threshold_options():
    series = sine(600)
    q = SequenceAnomalyDetector(**TINY, threshold=0.99).fit(series)
    assert q.threshold_ == pytest.approx(np.quantile(q.decision_scores_, 0.99))
    pot = SequenceAnomalyDetector(**TINY, threshold="pot", pot_level=0.9, pot_risk=1e-3).fit(series)
    assert pot.threshold_ > np.quantile(pot.decision_scores_, 0.9)
    assert pot.labels_.mean() < 0.02
    share = SequenceAnomalyDetector(**TINY, threshold="contamination", contamination=0.1).fit(series)
    assert share.labels_.mean() == pytest.approx(0.1, abs=0.01)
    assert share.threshold_ == pytest.approx(np.quantile(share.decision_scores_, 0.9))


def test_pot_threshold_matches_exponential_tail():
    """For exponential scores the threshold at risk q is -log(q)."""
    scores = np.random.default_rng(0).exponential(size=200_000)
    assert pot_threshold(scores, level=0.98, risk=1e-4) == pytest.approx(-np.log(1e-4), rel=0.05)


# ----------------------------------------------------------------------------- explain
def test_explain_channel_and_step_shares(multi):
    det, X = multi
    test = X[:300].copy()
    test[150, 1] += 5.0
    e = det.explain(test)
    np.testing.assert_allclose(e.channel_shares.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(e.step_shares.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(e.scores, det.decision_function(test), rtol=1e-6)
    assert e.channel_shares[150].argmax() == 1 and e.channel_shares[150, 1] > 0.5
    starts, window_scores = det.window_scores(test)
    np.testing.assert_array_equal(starts, e.window_starts)
    np.testing.assert_allclose(window_scores, e.window_scores, rtol=1e-6)
    covering = np.flatnonzero((e.window_starts <= 150) & (e.window_starts + 16 > 150))
    for k in covering:
        assert e.step_shares[k].argmax() == 150 - e.window_starts[k]
    with pytest.raises(ValueError, match="explain takes one series"):
        det.explain([test, test])


# ----------------------------------------------------------------------------- layouts
def test_input_layouts(uni):
    s = sine(200, seed=4)
    one = uni.decision_function(s)
    assert one.shape == (200,)
    np.testing.assert_array_equal(uni.decision_function(s[:, None]), one)
    as_list = uni.decision_function([s, s[:120]])
    assert [len(a) for a in as_list] == [200, 120]
    np.testing.assert_allclose(as_list[0], one, rtol=1e-5, atol=1e-7)
    padded = np.full((2, 200, 1), np.nan, dtype=np.float32)
    padded[0, :, 0], padded[1, :120, 0] = s, s[:120]
    out = uni.decision_function(padded)
    assert out.shape == (2, 200) and np.isnan(out[1, 120:]).all()
    np.testing.assert_allclose(out[1, :120], as_list[1], rtol=1e-5, atol=1e-7)
    flags = uni.predict(padded)
    assert (flags[1, 120:] == -1).all() and set(np.unique(flags[0])) <= {0, 1}


def test_fit_on_several_series():
    det = SequenceAnomalyDetector(**TINY).fit([sine(300, seed=1), sine(250, seed=2)])
    assert det.decision_scores_.shape == (550,)


def test_max_train_windows_caps_training_windows():
    det = SequenceAnomalyDetector(**{**TINY, "max_train_windows": 50})
    det.fit(sine(600))
    assert det._training_windows([sine(600)]).shape == (50, 16, 1)


def test_scoring_runs_in_bounded_batches(uni, monkeypatch):
    """Windows are cut and reconstructed predict_batch_size at a time, never all at once."""
    seen = []
    original = SequenceAnomalyDetector._window_errors

    def spy(self, windows, *args):
        seen.append(len(windows))
        return original(self, windows, *args)

    monkeypatch.setattr(SequenceAnomalyDetector, "_window_errors", spy)
    monkeypatch.setattr(uni, "predict_batch_size", 64)
    series = sine(20_001, seed=7)
    scores = uni.decision_function(series)
    n_windows = (20_001 - 16) // 4 + 1 + 1  # grid plus the tail window
    assert max(seen) == 64 and sum(seen) == n_windows
    monkeypatch.undo()
    np.testing.assert_allclose(scores, uni.decision_function(series), rtol=1e-5, atol=1e-7)


def test_save_load_keeps_threshold_and_scores(uni, tmp_path):
    path = uni.save(tmp_path / "det.ursa")
    loaded = ursa.load(path)
    assert loaded.threshold_ == uni.threshold_
    np.testing.assert_array_equal(loaded.decision_scores_, uni.decision_scores_)
    np.testing.assert_array_equal(loaded.labels_, uni.labels_)
    s = sine(300, seed=9)
    np.testing.assert_array_equal(loaded.predict(s), uni.predict(s))


# ----------------------------------------------------------------------------- bad input
def test_values_far_outside_the_training_range_score_finite_or_are_refused(uni):
    """A squared error of 1e29 overflows float32; the score must still be finite (and the
    largest), or, beyond what float32 holds once scaled, a clear error."""
    huge = sine(100)
    huge[40:45] = 1e29
    scores = uni.decision_function(huge)
    assert np.isfinite(scores).all()
    assert scores[40:45].min() > 1e50 and scores[:20].max() < 1e3
    assert uni.predict(huge)[40:45].all()
    beyond = sine(100)
    beyond[50] = np.finfo(np.float32).max
    with pytest.raises(ValueError, match=r"X gives a non-finite reconstruction error.*Rescale X"):
        uni.decision_function(beyond)


def test_bad_inputs(uni):
    with pytest.raises(ValueError, match=r"X has 10 time steps, fewer than window=16"):
        SequenceAnomalyDetector(**TINY).fit(sine(10))
    with pytest.raises(ValueError, match=r"X\[1\] has 12 time steps, fewer than window=16"):
        uni.decision_function([sine(100), sine(12)])
    bad = sine(100)
    bad[5] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN at step 5, feature 0"):
        uni.decision_function(bad)
    with pytest.raises(ValueError, match=r"X has 2 features per time step, but the estimator was "
                                         r"fitted with 1"):
        uni.decision_function(np.zeros((100, 2)))
    with pytest.raises(ValueError, match=r"3 dimensions .*got 4"):
        uni.decision_function(np.zeros((2, 3, 100, 1)))
    with pytest.raises(TypeError, match=r"got str"):
        uni.fit("series.csv")
    with pytest.raises(ValueError, match=r"score_stride must be an integer in \[1, window=16\]"):
        SequenceAnomalyDetector(**{**TINY, "score_stride": 17}).fit(sine(100))
    with pytest.raises(ValueError, match=r"'threshold' parameter"):
        SequenceAnomalyDetector(**{**TINY, "threshold": "otsu"}).fit(sine(100))
    with pytest.raises(ValueError, match=r"'contamination' parameter"):
        SequenceAnomalyDetector(**{**TINY, "contamination": 0.7}).fit(sine(100))
    with pytest.raises(ValueError, match=r"'window' parameter"):
        SequenceAnomalyDetector(**{**TINY, "window": 1}).fit(sine(100))


def test_public_names_import_from_where_they_did(multi):
    from ursa.estimators.anomaly import Explanation, StreamingScorer

    det, X = multi
    assert isinstance(det.stream(), StreamingScorer)
    assert isinstance(det.explain(X[:100]), Explanation)
    assert callable(pot_threshold) and ursa.SequenceAnomalyDetector is SequenceAnomalyDetector


def test_docstring_example_runs():
    import doctest

    import ursa.estimators.anomaly as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_resume_from_checkpoint_continues_the_fit(tmp_path):
    series = sine(300)
    params = {**TINY, "checkpoint_dir": str(tmp_path)}
    SequenceAnomalyDetector(**params).fit(series)  # 2 epochs, checkpointed
    resumed = SequenceAnomalyDetector(**{**params, "epochs": 3}).fit(series, resume=True)
    straight = SequenceAnomalyDetector(**{**TINY, "epochs": 3}).fit(series)
    assert resumed.n_iter_ == 3
    np.testing.assert_array_equal(resumed.decision_scores_, straight.decision_scores_)


# ----------------------------------------------------------------- window="auto"
def test_dominant_period_finds_the_period_or_none():
    from ursa.data import dominant_period

    rng = np.random.default_rng(0)
    t = np.arange(6000)
    assert dominant_period(np.sin(2 * np.pi * t / 50) + 0.3 * rng.normal(size=6000)) == 50
    both = np.c_[np.sin(2 * np.pi * t / 144), np.cos(2 * np.pi * t / 144)]  # two channels
    assert dominant_period(both) == 144
    assert dominant_period(rng.normal(size=6000)) is None  # white noise has no period
    assert dominant_period(np.ones(500)) is None  # nor has a constant
    assert dominant_period(np.sin(2 * np.pi * t[:90] / 50)) is None  # under three periods long


def test_auto_window_is_the_period_and_is_kept(tmp_path):
    t = np.arange(2400)
    rng = np.random.default_rng(1)
    series = np.sin(2 * np.pi * t / 40) + 0.1 * rng.normal(size=len(t))
    det = SequenceAnomalyDetector(window="auto", hidden_size=8, latent_dim=4, epochs=1,
                                  max_train_windows=200, random_state=0, device=DEVICE)
    det.fit(series[:1600])
    assert det.window == "auto" and det.window_ == 40
    scores = det.decision_function(series)
    starts, _ = det.window_scores(series)
    assert scores.shape == series.shape and np.diff(starts[:-1]).max() == det.score_stride
    scorer = det.stream()
    streamed = np.concatenate([scorer.update(series[i : i + 333]) for i in range(0, len(t), 333)]
                              + [scorer.flush()])
    np.testing.assert_allclose(streamed, scores, rtol=1e-6)
    loaded = ursa.load(det.save(tmp_path / "det.ursa"))
    assert loaded.window_ == 40
    np.testing.assert_array_equal(loaded.decision_function(series), scores)
    noise = SequenceAnomalyDetector(window="auto", hidden_size=8, latent_dim=4, epochs=1,
                                    max_train_windows=100, random_state=0, device=DEVICE)
    assert noise.fit(rng.normal(size=1000)).window_ == 64  # no period: the fallback
    short = SequenceAnomalyDetector(window="auto", hidden_size=8, latent_dim=4, epochs=1,
                                    random_state=0, device=DEVICE)
    assert short.fit(np.sin(2 * np.pi * t[:50] / 40)).window_ <= 50  # within the series
    with pytest.raises(ValueError, match=r"score_stride must be an integer in \[1, window=16\]"):
        SequenceAnomalyDetector(window="auto", score_stride=20, epochs=1, device=DEVICE).fit(
            np.sin(2 * np.pi * t / 12))  # period 12 -> window 16 < score_stride


def test_continuous_channels_leave_binary_flags_out(tmp_path):
    """One telemetry value and two one-hot command flags: with channels="continuous" the
    autoencoder models the value only, the flags' switches raise no score, and explain gives the
    flags no share."""
    rng = np.random.default_rng(0)
    n = 1200
    value = sine(n, 30, seed=3)
    flags = np.zeros((n, 2), dtype=np.float32)
    flags[rng.integers(0, n, 40), 0] = 1.0  # rare switches, in training and test alike
    flags[:, 1] = 1.0 - flags[:, 0]
    X = np.c_[value, flags].astype(np.float32)
    test = X.copy()
    test[900:910, 0] += 2.0  # an anomaly in the value
    params = dict(TINY, epochs=3)
    det = SequenceAnomalyDetector(channels="continuous", **params).fit(X[:800])
    front = det.network_.encoder.front  # the default encoder reads its input by convolution
    assert det.channels_.tolist() == [0] and front.layers[0].in_features == front.kernel * 1
    scores = det.decision_function(test)
    assert 880 <= int(np.argmax(scores)) <= 930
    shares = det.explain(test).channel_shares
    assert shares.shape == (n, 3) and np.all(shares[:, 1:] == 0)
    np.testing.assert_allclose(shares[:, 0], 1.0)
    loaded = ursa.load(det.save(tmp_path / "det.ursa"))
    assert loaded.channels_.tolist() == [0]
    np.testing.assert_array_equal(loaded.decision_function(test), scores)
    scorer = det.stream()
    streamed = np.concatenate([scorer.update(test[:600]), scorer.update(test[600:]),
                               scorer.flush()])
    np.testing.assert_allclose(streamed, scores, rtol=1e-6)
    every = SequenceAnomalyDetector(channels="all", **params).fit(X[:800])
    assert every.channels_.tolist() == [0, 1, 2]
    assert SequenceAnomalyDetector(**params).fit(X[:800]).channels_.tolist() == [0]  # default
    assert SequenceAnomalyDetector(channels="continuous", **params).fit(
        flags[:800]).channels_.tolist() == [0, 1]  # all binary: all modelled
