"""Privacy leakage: how well an attacker tells training sequences from unseen ones."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["closest_distances", "membership_inference_auc"]


def _scores(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or len(array) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of per-sequence scores, got "
                         f"shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if len(bad):
        raise ValueError(f"{name}[{bad[0]}] is {array[bad[0]]}: scores must be finite")
    return array


def membership_inference_auc(train_losses, holdout_losses) -> float:
    """AUC of the loss-threshold membership-inference attack (Yeom et al., CSF 2018).

    The attacker guesses that a sequence was in the training set when the model's loss on it
    (reconstruction error, a discriminator's "fake" score: any per-sequence score that is lower
    on data the model fitted) is low. The AUC is the probability that a random training
    sequence scores lower than a random held-out one (ties count half): 0.5 means the model
    leaks nothing this attack can see, 1.0 that every training sequence is recognised.

    Parameters
    ----------
    train_losses : array of shape (n_train,)
        The loss of each training sequence (members).
    holdout_losses : array of shape (n_holdout,)
        The loss of each sequence from the same distribution the model never saw.

    Returns
    -------
    float in [0, 1]
    """
    members = _scores(train_losses, "train_losses")
    others = _scores(holdout_losses, "holdout_losses")
    ranks = rankdata(np.concatenate([members, others]))  # average ranks: ties count half
    n, m = len(members), len(others)
    # Mann-Whitney: pairs where a held-out loss exceeds a member's.
    greater = ranks[n:].sum() - m * (m + 1) / 2
    return float(greater / (n * m))


def closest_distances(X, synthetic, batch_size: int = 1024) -> np.ndarray:
    """Euclidean distance from each sequence of ``X`` to its closest synthetic sequence.

    The distance-to-closest-record attack on a generator (Chen et al., CCS 2020): samples that
    copy or hug training sequences lie closer to them than to unseen ones. Pass the distances
    of training and of held-out sequences to :func:`membership_inference_auc`; near 0.5 the
    samples sit no closer to the training data than to fresh data from its distribution.

    Parameters
    ----------
    X : array of shape (n, n_timesteps[, n_features])
        The sequences to place (training or held-out ones), compared as flat vectors.
    synthetic : array of shape (m, n_timesteps[, n_features])
        The generator's samples, with the same shape per sequence.
    batch_size : int, default=1024
        Rows of ``X`` compared at once (memory: ``batch_size * m`` distances).

    Returns
    -------
    ndarray of shape (n,)
    """
    rows = np.asarray(X, dtype=np.float64)
    samples = np.asarray(synthetic, dtype=np.float64)
    if rows.ndim < 2 or samples.ndim < 2 or len(rows) == 0 or len(samples) == 0:
        raise ValueError(f"X and synthetic must be non-empty arrays of sequences, got shapes "
                         f"{rows.shape} and {samples.shape}")
    if rows.shape[1:] != samples.shape[1:]:
        raise ValueError(f"X's sequences have shape {rows.shape[1:]} but synthetic's "
                         f"{samples.shape[1:]}: compare sequences of one length and width")
    for name, array in (("X", rows), ("synthetic", samples)):
        if not np.isfinite(array).all():
            raise ValueError(f"{name} holds NaN or infinite values: crop padded sequences to "
                             "one length first")
    rows, samples = rows.reshape(len(rows), -1), samples.reshape(len(samples), -1)
    squared = (samples ** 2).sum(1)
    out = np.empty(len(rows))
    for start in range(0, len(rows), batch_size):
        part = rows[start:start + batch_size]
        d2 = (part ** 2).sum(1)[:, None] - 2 * part @ samples.T + squared[None]
        out[start:start + len(part)] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return out
