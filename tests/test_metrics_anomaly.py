"""Anomaly metrics: known values, the paper's definitions, the reference code's values, and input
checks."""

import json
from pathlib import Path

import numpy as np
import pytest

from ursa import metrics
from ursa.metrics import (
    anomaly_ranges,
    auc_pr,
    auc_roc,
    best_f1,
    point_adjusted_f1_inflated,
    range_auc_pr,
    vus_pr,
)


def labels_with(n=200, ranges=((50, 59), (140, 149))):
    y = np.zeros(n, dtype=int)
    for a, b in ranges:
        y[a : b + 1] = 1
    return y


def test_exported_from_metrics_package():
    for name in ("auc_roc", "auc_pr", "vus_pr", "range_auc_pr", "best_f1",
                 "point_adjusted_f1_inflated"):
        assert name in metrics.__all__


def test_anomaly_ranges():
    y = np.array([1, 1, 0, 0, 1, 0, 1])
    np.testing.assert_array_equal(anomaly_ranges(y), [[0, 1], [4, 4], [6, 6]])


def test_perfect_and_inverted_scores():
    y = labels_with()
    perfect = y + 0.01 * np.arange(len(y)) / len(y)
    assert auc_roc(y, perfect) == 1.0
    assert auc_pr(y, perfect) == 1.0
    assert best_f1(y, perfect)[0] == 1.0
    assert range_auc_pr(y, perfect, buffer=0) == pytest.approx(1.0)
    assert auc_roc(y, -perfect) == 0.0
    assert auc_pr(y, -perfect) < 0.15


def test_known_small_values():
    y = np.array([0, 0, 1, 1, 0])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.2])
    # ranks: positives 0.8 (beats all 3 negatives), 0.35 (beats 0.1, 0.2) -> 5 / 6
    assert auc_roc(y, s) == pytest.approx(5 / 6)
    # AP: thresholds 0.8 (P=1, R=.5), 0.4 (P=.5, R=.5), 0.35 (P=2/3, R=1) -> .5*1 + .5*2/3
    assert auc_pr(y, s) == pytest.approx(0.5 + 0.5 * 2 / 3)
    f1, threshold = best_f1(y, s)
    # flag {0.8}: P=1, R=.5 -> 2/3; flag {0.8, 0.4, 0.35}: P=2/3, R=1 -> 0.8
    assert f1 == pytest.approx(0.8) and threshold == pytest.approx(0.35)


def test_random_scores_near_prevalence():
    rng = np.random.default_rng(0)
    y = labels_with(5000, ((1000, 1199), (3000, 3299)))
    s = rng.random(len(y))
    assert abs(auc_roc(y, s) - 0.5) < 0.05
    assert abs(auc_pr(y, s) - y.mean()) < 0.03
    assert vus_pr(y, s, max_buffer=64) < 0.2


def test_range_auc_pr_buffer_forgives_near_misses():
    """A detection just before the labelled range earns credit only with a buffer."""
    y = labels_with(300, ((150, 159),))
    s = np.zeros(len(y))
    s[144:148] = 1.0  # 3-6 steps early
    s += 1e-6 * np.random.default_rng(0).random(len(y))
    assert range_auc_pr(y, s, buffer=0) < 0.2
    assert range_auc_pr(y, s, buffer=20) > range_auc_pr(y, s, buffer=0) + 0.2


def test_range_auc_pr_existence_reward():
    """Finding one of two ranges caps recall at half the soft recall."""
    y = labels_with(300, ((50, 59), (200, 209)))
    s = np.zeros(len(y))
    s[50:60] = 1.0
    r = range_auc_pr(y, s, buffer=0, n_thresholds=None)
    # flagged set {50..59}: TP 10 of 20, existence 1/2 -> recall .25 at precision 1; then all
    # (recall 1 at precision 20 / 300); each threshold's precision weighs the recall it adds.
    assert r == pytest.approx(0.25 * 1.0 + 0.75 * 20 / 300)


def test_vus_pr_is_mean_of_range_auc_pr():
    rng = np.random.default_rng(1)
    y = labels_with(400, ((100, 129), (300, 309)))
    s = y * 0.5 + rng.random(len(y))
    expected = np.mean([range_auc_pr(y, s, buffer=b) for b in range(0, 21)])
    assert vus_pr(y, s, max_buffer=20) == pytest.approx(expected)
    assert 0.0 < vus_pr(y, s, max_buffer=20) <= 1.0


def test_point_adjustment_is_inflated():
    """Random scores score high with point adjustment on wide ranges, low without."""
    rng = np.random.default_rng(0)
    y = labels_with(2000, ((200, 599), (1200, 1599)))
    s = rng.random(len(y))
    assert point_adjusted_f1_inflated(y, s)[0] > 0.9
    assert best_f1(y, s)[0] < 0.6


@pytest.mark.parametrize("fn", [auc_roc, auc_pr, best_f1, vus_pr, range_auc_pr,
                                point_adjusted_f1_inflated])
def test_bad_inputs(fn):
    y = labels_with(50, ((10, 14),))
    s = np.random.default_rng(0).random(50)
    with pytest.raises(ValueError, match=r"labels has 50 steps but scores has 49"):
        fn(y, s[:49])
    bad = s.copy()
    bad[7] = np.nan
    with pytest.raises(ValueError, match=r"scores\[7\] is nan"):
        fn(y, bad)
    wrong = y.copy()
    wrong[3] = 2
    with pytest.raises(ValueError, match=r"labels\[3\] is 2"):
        fn(wrong, s)
    with pytest.raises(ValueError, match=r"no anomalous steps"):
        fn(np.zeros(50, dtype=int), s)
    with pytest.raises(ValueError, match=r"shape \(n_timesteps,\)"):
        fn(y[None, :], s[None, :])
    with pytest.raises(TypeError, match=r"scores must hold real numbers"):
        fn(y, np.array(["a"] * 50))


def test_bad_buffer_arguments():
    y = labels_with(50, ((10, 14),))
    s = np.random.default_rng(0).random(50)
    with pytest.raises(ValueError, match=r"max_buffer must be an integer >= 0"):
        vus_pr(y, s, max_buffer=-1)
    with pytest.raises(ValueError, match=r"n_thresholds must be an integer >= 2"):
        vus_pr(y, s, n_thresholds=1)


def naive_range_auc_pr(y, s, buffer, n_thresholds):
    """The definition with TSB-AD's rules, one threshold at a time: soft buffers; positives are
    the labelled steps plus half the weights of the flagged buffer steps; existence over the
    widened ranges, merged where they overlap; average precision over the thresholds."""
    n = len(y)
    label = y.astype(float)
    half = buffer // 2
    merged = []
    for a, b in anomaly_ranges(y):
        for d in range(1, half + 1):
            w = np.sqrt(1 - d / buffer)
            if a - d >= 0:
                label[a - d] += w
            if b + d < n:
                label[b + d] += w
        if merged and merged[-1][1] >= a - half:  # the widened ranges overlap: one range
            merged[-1][1] = min(b + half, n - 1)
        else:
            merged.append([max(a - half, 0), min(b + half, n - 1)])
    label = np.minimum(label, 1)
    ordered = np.sort(s)[::-1]
    ap, previous = 0.0, 0.0
    for i in np.linspace(0, n - 1, n_thresholds).astype(int):
        pred = s >= ordered[i]
        tp = (label * pred).sum()
        positives = (y.sum() + (y + (1 - y) * label * pred).sum()) / 2
        existence = np.mean([pred[a : b + 1].any() for a, b in merged])
        recall = min(tp / positives, 1) * existence
        ap += (recall - previous) * tp / pred.sum()
        previous = recall
    return ap


@pytest.mark.parametrize("buffer", [0, 1, 6, 15, 40])
def test_range_auc_pr_matches_a_direct_reading_of_the_definition(buffer):
    rng = np.random.default_rng(buffer)
    y = labels_with(300, ((20, 24), (100, 139), (150, 152), (290, 299)))
    s = np.round(y * 0.4 + rng.random(300), 2)  # rounding makes ties
    for n_thresholds in (250, 37):
        assert range_auc_pr(y, s, buffer=buffer, n_thresholds=n_thresholds) == pytest.approx(
            naive_range_auc_pr(y, s, buffer, n_thresholds), rel=1e-12)


# ----------------------------------------------------------------- the field's VUS-PR
TSB_AD_FIXTURES = Path(__file__).parent / "data" / "vus_pr_tsb_ad.json"


def _tsb_ad_cases():
    return json.loads(TSB_AD_FIXTURES.read_text())["cases"]


@pytest.mark.parametrize("case", _tsb_ad_cases(), ids=lambda case: case["name"])
def test_vus_pr_equals_the_tsb_ad_reference(case):
    """Values of the TSB-AD package (1.5: ``generate_curve(labels, scores, window,
    version="opt", thre=250)``, run once to write the fixtures) on one long and several short
    anomalies, wide buffers, flags just outside the ranges, buffers that merge or only touch,
    anomalies at both ends, tied and constant scores: equal to float rounding, per buffer too."""
    labels, scores = np.array(case["labels"]), np.array(case["scores"])
    assert vus_pr(labels, scores, max_buffer=case["window"]) == pytest.approx(
        case["vus_pr"], abs=1e-12)
    per_buffer = [range_auc_pr(labels, scores, buffer=b) for b in range(case["window"] + 1)]
    np.testing.assert_allclose(per_buffer, case["range_auc_pr"], rtol=0, atol=1e-12)
