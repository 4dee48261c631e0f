"""Clustering metrics: agreement with reference labels (ARI, NMI, accuracy under the best matching)
and an internal criterion on the latent space (silhouette).

Label values may be any hashable type (strings, integers); only the partition matters.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "adjusted_rand_score",
    "normalized_mutual_info_score",
    "cluster_accuracy",
    "silhouette_score",
    "contingency_matrix",
]


def _labels(name: str, labels) -> np.ndarray:
    if isinstance(labels, (str, bytes)) or labels is None:
        raise TypeError(f"{name} must be a 1-D array of labels, got {type(labels).__name__}.")
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per sequence), got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"{name} is empty; pass one label per sequence.")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        index = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(f"{name}[{index}] is {array[index]}; labels must be finite.")
    return array


def _pair(labels_true, labels_pred) -> tuple[np.ndarray, np.ndarray]:
    a = _labels("labels_true", labels_true)
    b = _labels("labels_pred", labels_pred)
    if len(a) != len(b):
        raise ValueError(f"labels_true has {len(a)} labels but labels_pred has {len(b)}; "
                         "pass one label per sequence in both.")
    return a, b


def contingency_matrix(labels_true, labels_pred) -> np.ndarray:
    """Counts ``C[i, j]`` of sequences in true class i and predicted cluster j (sorted label order).

    Returns ndarray of shape (n_classes, n_clusters), int64.
    """
    a, b = _pair(labels_true, labels_pred)
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1), dtype=np.int64)
    np.add.at(table, (ia, ib), 1)
    return table


def adjusted_rand_score(labels_true, labels_pred) -> float:
    """Adjusted Rand index (Hubert & Arabie 1985): 1 for identical partitions, ~0 for random ones."""
    from sklearn.metrics import adjusted_rand_score as ari

    a, b = _pair(labels_true, labels_pred)
    return float(ari(a, b))


def normalized_mutual_info_score(labels_true, labels_pred) -> float:
    """Normalised mutual information (arithmetic mean normalisation, scikit-learn's default)."""
    from sklearn.metrics import normalized_mutual_info_score as nmi

    a, b = _pair(labels_true, labels_pred)
    return float(nmi(a, b))


def cluster_accuracy(labels_true, labels_pred) -> float:
    """Accuracy after matching clusters to classes one to one (Hungarian method).

    Each predicted cluster is assigned to at most one class so that the number of agreeing
    sequences is maximal (``scipy.optimize.linear_sum_assignment``); extra clusters or classes stay
    unmatched and count as errors. Returns a float in [0, 1].
    """
    from scipy.optimize import linear_sum_assignment

    table = contingency_matrix(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def silhouette_score(Z, labels, *, sample_size: int | None = None, random_state=None) -> float:
    """Mean silhouette coefficient of ``labels`` on embeddings ``Z`` (Euclidean distances).

    Parameters
    ----------
    Z : array of shape (n_sequences, latent_dim)
        Latent codes, e.g. ``RecurrentClusterer.transform(X)``.
    labels : array of shape (n_sequences,)
    sample_size : int or None
        Score a random subset of this size (bounded cost on large data).

    Returns a float in [-1, 1]; higher means tighter, better separated clusters. Needs
    2 <= number of distinct labels <= n_sequences - 1.
    """
    from sklearn.metrics import silhouette_score as silhouette

    Z = np.asarray(Z)
    if Z.ndim != 2:
        raise ValueError(f"Z must have shape (n_sequences, latent_dim), got shape {Z.shape}.")
    if Z.dtype.kind not in "iuf":
        raise TypeError(f"Z must hold real numbers, got dtype {Z.dtype}.")
    if not np.isfinite(Z).all():
        index = int(np.flatnonzero(~np.isfinite(Z).all(axis=1))[0])
        raise ValueError(f"Z[{index}] contains NaN or infinite values; pass finite embeddings.")
    labels = _labels("labels", labels)
    if len(labels) != len(Z):
        raise ValueError(f"Z has {len(Z)} rows but labels has {len(labels)}; pass one label per row.")
    n_labels = len(np.unique(labels))
    if not 2 <= n_labels <= len(Z) - 1:
        raise ValueError(f"silhouette needs between 2 and n_sequences - 1 = {len(Z) - 1} distinct "
                         f"labels, got {n_labels}.")
    return float(silhouette(Z, labels, sample_size=sample_size, random_state=random_state))
