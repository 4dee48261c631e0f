"""OutlierDetectorMixin (PyOD's contract, written once) on a small concrete scorer, and
pot_threshold."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator

from ursa._params import check_params
from ursa.estimators._outlier import OUTLIER_CONSTRAINTS, OutlierDetectorMixin, pot_threshold
from ursa.estimators.anomaly import pot_threshold as exported


class DistanceToMean(OutlierDetectorMixin, BaseEstimator):
    """Score = distance to the training mean; enough to exercise the mixin."""

    def __init__(self, contamination=0.1, threshold="contamination", pot_level=0.98,
                 pot_risk=1e-3):
        self.contamination = contamination
        self.threshold = threshold
        self.pot_level = pot_level
        self.pot_risk = pot_risk

    def fit(self, X):
        check_params(self, OUTLIER_CONSTRAINTS)
        self.center_ = float(np.mean(X))
        self._set_decision_scores(self.decision_function(X))
        return self

    def decision_function(self, X):
        if isinstance(X, list):
            return [self.decision_function(x) for x in X]
        return np.abs(np.asarray(X, dtype=np.float64) - self.center_)


TRAIN = np.random.default_rng(0).standard_normal(5000)


def test_contamination_sets_the_quantile_and_labels():
    det = DistanceToMean(contamination=0.05).fit(TRAIN)
    assert det.decision_scores_.shape == (5000,) and det.decision_scores_.dtype == np.float64
    assert det.threshold_ == np.quantile(det.decision_scores_, 0.95)
    assert det.labels_.dtype == np.int64 and det.labels_.mean() == pytest.approx(0.05, abs=1e-3)


def test_float_and_pot_thresholds():
    q = DistanceToMean(threshold=0.99).fit(TRAIN)
    assert q.threshold_ == np.quantile(q.decision_scores_, 0.99)
    pot = DistanceToMean(threshold="pot", pot_level=0.9, pot_risk=1e-3).fit(TRAIN)
    assert pot.threshold_ == pot_threshold(pot.decision_scores_, level=0.9, risk=1e-3)
    assert pot.threshold_ > np.quantile(pot.decision_scores_, 0.9)


def test_predict_and_score_samples_follow_decision_function_in_every_layout():
    det = DistanceToMean().fit(TRAIN)
    x = np.array([0.0, 0.1, 5.0, -4.0])
    np.testing.assert_array_equal(det.predict(x), [0, 0, 1, 1])
    np.testing.assert_array_equal(det.score_samples(x), -det.decision_function(x))
    flags = det.predict([x, x[:2]])
    assert [f.tolist() for f in flags] == [[0, 0, 1, 1], [0, 0]]
    negated = det.score_samples([x[2:]])
    np.testing.assert_array_equal(negated[0], -det.decision_function(x[2:]))
    padded = np.array([[0.0, 5.0, np.nan], [5.0, np.nan, np.nan]])
    np.testing.assert_array_equal(det.predict(padded), [[0, 1, -1], [1, -1, -1]])


def test_parameter_constraints():
    with pytest.raises(ValueError, match=r"'threshold' parameter"):
        DistanceToMean(threshold="otsu").fit(TRAIN)
    with pytest.raises(ValueError, match=r"'contamination' parameter"):
        DistanceToMean(contamination=0.7).fit(TRAIN)
    with pytest.raises(ValueError, match=r"'pot_risk' parameter"):
        DistanceToMean(pot_risk=0.0).fit(TRAIN)


def test_pot_threshold_falls_back_and_stays_exported():
    assert exported is pot_threshold
    few = np.r_[np.zeros(995), np.ones(5)]  # 5 excesses: too few to fit a tail
    assert pot_threshold(few, level=0.98, risk=1e-3) == np.quantile(few, 1 - 1e-3)
