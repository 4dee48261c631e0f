"""Privacy leakage: how well an attacker tells training sequences from unseen ones."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["membership_inference_auc"]


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
