"""Clustering metrics: values on hand-checked cases, label invariances, input errors."""

import numpy as np
import pytest
from sklearn import metrics as skm

from ursa import metrics


def test_exported_from_ursa_metrics():
    for name in ("adjusted_rand_score", "normalized_mutual_info_score", "cluster_accuracy",
                 "silhouette_score", "contingency_matrix"):
        assert name in metrics.__all__
        assert callable(getattr(metrics, name))


def test_identical_partitions_under_renaming_score_one():
    truth = np.array(["a", "a", "b", "b", "c", "c"])
    renamed = np.array([2, 2, 0, 0, 1, 1])
    assert metrics.adjusted_rand_score(truth, renamed) == pytest.approx(1.0)
    assert metrics.normalized_mutual_info_score(truth, renamed) == pytest.approx(1.0)
    assert metrics.cluster_accuracy(truth, renamed) == pytest.approx(1.0)


def test_cluster_accuracy_uses_best_one_to_one_matching():
    truth = [0, 0, 0, 1, 1, 1, 2, 2]
    pred = [1, 1, 0, 0, 0, 0, 2, 2]
    # best matching: cluster 1 -> class 0 (2), cluster 0 -> class 1 (3), cluster 2 -> class 2 (2)
    assert metrics.cluster_accuracy(truth, pred) == pytest.approx(7 / 8)
    # a greedy majority vote would map clusters 0 and 1 both to class 0; one-to-one forbids it
    assert metrics.cluster_accuracy([0, 0, 0, 0, 1, 1], [0, 0, 1, 1, 1, 1]) == pytest.approx(4 / 6)


def test_cluster_accuracy_with_more_clusters_than_classes():
    # four clusters, two classes: two clusters stay unmatched and count as errors
    assert metrics.cluster_accuracy([0, 0, 1, 1], [0, 1, 2, 3]) == pytest.approx(0.5)


def test_contingency_matrix_counts():
    table = metrics.contingency_matrix(["x", "x", "y"], [1, 0, 0])
    np.testing.assert_array_equal(table, [[1, 1], [1, 0]])


def test_ari_and_nmi_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 200), rng.integers(0, 3, 200)
    assert metrics.adjusted_rand_score(a, b) == pytest.approx(skm.adjusted_rand_score(a, b))
    assert metrics.normalized_mutual_info_score(a, b) == pytest.approx(
        skm.normalized_mutual_info_score(a, b))
    assert abs(metrics.adjusted_rand_score(a, b)) < 0.05  # independent labels: near 0


def test_silhouette_separated_vs_mixed():
    rng = np.random.default_rng(0)
    Z = np.concatenate([rng.normal(0, 0.1, (20, 3)), rng.normal(5, 0.1, (20, 3))])
    good = np.repeat([0, 1], 20)
    assert metrics.silhouette_score(Z, good) > 0.9
    assert metrics.silhouette_score(Z, rng.permutation(good)) < 0.1


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: metrics.adjusted_rand_score([0, 1], [0, 1, 1]), ValueError, "2 labels but labels_pred has 3"),
    (lambda: metrics.normalized_mutual_info_score([], []), ValueError, "labels_true is empty"),
    (lambda: metrics.cluster_accuracy([[0, 1]], [0, 1]), ValueError, "labels_true must be 1-D"),
    (lambda: metrics.cluster_accuracy([0, np.nan], [0, 1]), ValueError, r"labels_true\[1\] is nan"),
    (lambda: metrics.adjusted_rand_score("abc", [0, 1, 2]), TypeError, "labels_true must be"),
    (lambda: metrics.silhouette_score(np.ones((4, 2)), [0, 0, 0, 0]), ValueError, "distinct labels, got 1"),
    (lambda: metrics.silhouette_score(np.ones(4), [0, 1, 0, 1]), ValueError, "Z must have shape"),
    (lambda: metrics.silhouette_score(np.array([[0.0], [np.inf], [1], [2]]), [0, 1, 0, 1]),
     ValueError, r"Z\[1\] contains NaN"),
    (lambda: metrics.silhouette_score(np.ones((4, 2)), [0, 1]), ValueError, "4 rows but labels has 2"),
])
def test_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
