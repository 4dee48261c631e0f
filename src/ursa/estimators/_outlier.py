"""What anomaly scorers share, after PyOD's ``BaseDetector``: the threshold set on the training
scores (a quantile, or peaks over threshold), ``decision_scores_`` / ``threshold_`` / ``labels_``,
and ``predict`` from ``decision_function``, written once."""

from __future__ import annotations

import numpy as np

from .._params import Interval, Options

__all__ = ["OUTLIER_CONSTRAINTS", "OutlierDetectorMixin", "pot_threshold"]

THRESHOLDS = ("contamination", "pot")

# The parameters of OutlierDetectorMixin, for a subclass's _parameter_constraints.
OUTLIER_CONSTRAINTS = {
    "contamination": [Interval(float, 0.0, 0.5, open_low=True)],
    "threshold": [Options(THRESHOLDS), Interval(float, 0.0, 1.0, open_low=True)],
    "pot_level": [Interval(float, 0.5, 0.9999)],
    "pot_risk": [Interval(float, 0.0, 0.5, open_low=True)],
}


class OutlierDetectorMixin:
    """PyOD's anomaly contract for an estimator that scores its own training data.

    The estimator defines ``decision_function(X)`` (higher = more abnormal; one array of scores,
    a list of them, or an array NaN-padded after each series' end) and the parameters
    ``contamination``, ``threshold``, ``pot_level`` and ``pot_risk`` (checked with
    :data:`OUTLIER_CONSTRAINTS`), and ends ``fit`` with ``self._set_decision_scores(scores)`` on
    its training scores. The mixin then provides:

    * ``decision_scores_``, ``threshold_`` and ``labels_`` (0/1 per training score);
    * :meth:`predict` (0/1 above ``threshold_``), :meth:`fit_predict`, :meth:`score_samples`
      (scikit-learn's sign) and :meth:`score` (higher is better, for model selection);
    * the scikit-learn tag ``estimator_type="outlier_detector"``, so that
      ``sklearn.base.is_outlier_detector`` is True. scikit-learn's ``OutlierMixin`` is not used:
      its contract (``predict`` -> -1/1, ``decision_function`` negative on outliers) is the
      opposite of PyOD's, which these detectors keep;
    * saving and loading of the threshold and training scores with the model.

    ``threshold`` chooses how ``threshold_`` is set from the training scores: ``"contamination"``,
    their ``1 - contamination`` quantile (PyOD's rule); ``"pot"``, :func:`pot_threshold` with
    ``pot_level`` and ``pot_risk``; a float ``q`` in (0, 1], their ``q`` quantile.
    :meth:`calibrate` sets it by the same rule from the scores of other data. An estimator that
    must not score its training data (a private fit) passes None to ``_set_decision_scores``:
    ``threshold_`` is then None until :meth:`calibrate`.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "outlier_detector"
        return tags

    def _set_decision_scores(self, scores) -> None:
        """Set ``decision_scores_``, ``threshold_`` and ``labels_`` from the training scores
        (None: no training scores, no threshold until :meth:`calibrate`)."""
        if scores is None:
            for name in ("decision_scores_", "labels_"):
                self.__dict__.pop(name, None)
            self.threshold_ = None
            return
        self.decision_scores_ = np.asarray(scores, dtype=np.float64)
        self.threshold_ = self._threshold_of(self.decision_scores_)
        self.labels_ = self._flags(self.decision_scores_)

    def calibrate(self, X):
        """Set ``threshold_`` from the scores of ``X`` by the ``threshold`` rule (the rule
        ``fit`` applies to the training scores), e.g. normal data held out from training, or
        after a private fit, which does not score its training data. ``decision_scores_`` and
        ``labels_`` (the training data's) are left as they are.

        Returns
        -------
        self
        """
        out = self.decision_function(X)
        parts = out if isinstance(out, list) else [out]
        values = np.concatenate([np.ravel(np.asarray(o, dtype=np.float64)) for o in parts])
        values = values[~np.isnan(values)]  # padding
        if len(values) == 0:
            raise ValueError("X has no scored steps to calibrate the threshold on")
        self.threshold_ = self._threshold_of(values)
        return self

    def _threshold_of(self, scores: np.ndarray) -> float:
        if self.threshold == "contamination":
            return float(np.quantile(scores, 1.0 - self.contamination))
        if self.threshold == "pot":
            return pot_threshold(scores, level=self.pot_level, risk=self.pot_risk)
        return float(np.quantile(scores, float(self.threshold)))

    def _flags(self, scores):
        """0/1 per score above ``threshold_``, -1 where the score is NaN (padding)."""
        if isinstance(scores, list):
            return [self._flags(s) for s in scores]
        if self.threshold_ is None:
            raise ValueError(
                "threshold_ is not set: this detector was fitted with privacy, which does not "
                "score the training data. Call calibrate(X) with data whose scores may set the "
                "threshold (e.g. normal data you may use), then predict.")
        flags = (scores > self.threshold_).astype(np.int64)
        flags[np.isnan(scores)] = -1
        return flags

    def predict(self, X):
        """0/1 per score: 1 where ``decision_function(X)`` exceeds ``threshold_``.

        Same layout as :meth:`decision_function`; in an array NaN-padded after each series' end,
        the padded steps are -1.
        """
        return self._flags(self.decision_function(X))

    def fit_predict(self, X, y=None):
        """Fit on ``X`` and flag it: ``fit(X).predict(X)``, 0/1 (PyOD), not scikit-learn's
        -1/1."""
        return self.fit(X).predict(X)

    def score_samples(self, X):
        """Negated ``decision_function`` (scikit-learn's sign: lower = more abnormal)."""
        out = self.decision_function(X)
        return [-o for o in out] if isinstance(out, list) else -out

    def score(self, X, y=None) -> float:
        """Negative mean anomaly score of ``X``: higher is better, as scikit-learn's model
        selection expects (mostly normal held-out data should score low).

        Parameters
        ----------
        X : what ``decision_function`` takes
        y : ignored

        Returns
        -------
        float
            ``-mean(decision_function(X))`` over every score (every valid step for per-step
            scorers; padding is left out).
        """
        out = self.decision_function(X)
        parts = out if isinstance(out, list) else [out]
        values = np.concatenate([np.ravel(np.asarray(o, dtype=np.float64)) for o in parts])
        return -float(np.nanmean(values))

    # ------------------------------------------------------------------ persistence
    def _get_state(self):
        document, arrays = super()._get_state()
        document["threshold"] = self.threshold_
        if getattr(self, "decision_scores_", None) is not None:
            arrays["decision_scores"] = self.decision_scores_
        return document, arrays

    def _set_state(self, document, arrays):
        super()._set_state(document, arrays)
        threshold = document["threshold"]
        self.threshold_ = None if threshold is None else float(threshold)
        if "decision_scores" in arrays:
            self.decision_scores_ = np.asarray(arrays["decision_scores"], dtype=np.float64)
            self.labels_ = self._flags(self.decision_scores_)


def pot_threshold(scores, level: float = 0.98, risk: float = 1e-3) -> float:
    """Peaks-over-threshold threshold (extreme value theory; Siffer et al., KDD 2017).

    The scores above their ``level`` quantile ``t`` are modelled by a generalised Pareto
    distribution (shape gamma, scale sigma, fitted by maximum likelihood with scipy); the returned
    threshold is the score that a normal step exceeds with probability ``risk``:
    ``t + sigma / gamma * ((risk * n / n_t) ** -gamma - 1)`` (``t - sigma * log(risk * n / n_t)``
    when gamma is 0), with ``n`` scores of which ``n_t`` exceed ``t``.

    Parameters
    ----------
    scores : array-like of shape (n_scores,)
        Training scores, higher = more abnormal.
    level : float, default=0.98
        Quantile above which the tail is modelled: high enough that the excesses follow the
        tail's law, low enough to leave a few percent of the scores to fit it (the paper's 98 %).
    risk : float, default=1e-3
        Probability that a normal score exceeds the threshold.

    Returns
    -------
    float
        The threshold; the empirical ``1 - risk`` quantile when fewer than 10 scores, or only
        equal ones, lie above ``t``.
    """
    from scipy.stats import genpareto

    scores = np.asarray(scores, dtype=np.float64)
    t = float(np.quantile(scores, level))
    peaks = scores[scores > t] - t
    n, n_t = len(scores), len(peaks)
    if n_t < 10 or float(peaks.std()) == 0.0:
        # Too few distinct excesses to fit a tail: fall back to the empirical quantile.
        return float(np.quantile(scores, 1.0 - risk))
    ratio = risk * n / n_t
    if ratio >= 1.0:
        return t
    gamma, _, sigma = genpareto.fit(peaks, floc=0.0)
    if abs(gamma) < 1e-8:
        return float(t - sigma * np.log(ratio))
    return float(t + sigma / gamma * (ratio ** (-gamma) - 1.0))
