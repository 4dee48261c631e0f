"""Faithfulness of explanations: does deleting what an explanation points at change the score
more than deleting as much at random?"""

from __future__ import annotations

import math

import numpy as np

from ..data import as_sequences, restore_layout

__all__ = ["deletion_check"]


def _items(X, name: str) -> tuple[list[np.ndarray], object]:
    """``X`` as a list of (T_i, C) float64 arrays (each sequence's valid steps, as
    :func:`ursa.data.as_sequences` reads them), and a function that lays such a list out like
    ``X`` again (:func:`ursa.data.restore_layout`)."""
    seqs = as_sequences(X, name=name, allow_nan=True)
    values = seqs.values.astype(np.float64)
    items = [values[i, :n] for i, n in enumerate(seqs.lengths)]

    def rebuild(new):
        out = np.zeros(values.shape)
        for i, x in enumerate(new):
            out[i, : len(x)] = x
        return restore_layout(X, out, seqs.lengths)

    return items, rebuild


def deletion_check(score, X, attributions, *, fraction: float = 0.1, baseline=None,
                   n_random: int = 5, random_state=0) -> dict:
    """How much a score changes when the steps an explanation ranks highest are deleted,
    against deleting as many random steps.

    A step's importance is its attributions summed over channels (how much it raised the
    score; steps that lowered it rank last, so that deleting the top steps cannot cancel out); in
    each sequence the ceil(``fraction`` * length) most important steps are set to ``baseline``, and
    separately ``n_random`` times as many random steps. A faithful explanation moves the score
    more than chance does: ``ratio`` well above 1.

    Parameters
    ----------
    score : callable
        ``score(X) -> array (n_sequences,)``: the score that was explained, on data laid out
        like ``X``.
    X : array of shape (n, T) or (n, T, C) (NaN after each end), or list of (T_i[, C]) arrays
    attributions : same layout as ``X``
        Per-step (per-channel) attributions, e.g. ``model.explain(X).attributions``.
    fraction : float, default=0.1
        Share of each sequence's steps to delete (at least one step).
    baseline : array of shape (C,), optional
        Value a deleted step takes; default each channel's mean over ``X`` (ignoring NaN).
    n_random : int, default=5
        Random deletions per sequence, averaged.
    random_state : int, default=0
        Seed of the random deletions.

    Returns
    -------
    dict
        ``top`` and ``random``: the mean absolute change of the score over the sequences,
        ``ratio``: ``top / random``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}.")
    if not isinstance(n_random, int) or n_random < 1:
        raise ValueError(f"n_random must be an integer >= 1, got {n_random!r}.")
    items, rebuild = _items(X, "X")
    weights = attributions
    if not isinstance(attributions, (list, tuple)):  # each row cut to its sequence's length
        weights = [np.asarray(w)[: len(x)] for w, x in zip(np.asarray(attributions), items)]
    weights, _ = _items(weights, "attributions")
    if len(weights) != len(items) or any(w.shape != x.shape for w, x in zip(weights, items)):
        raise ValueError("attributions must be laid out like X (one row per step of each "
                         "sequence); pass explain(X).attributions for the same X.")
    fill = (np.nanmean(np.concatenate(items), axis=0) if baseline is None
            else np.asarray(baseline, dtype=np.float64))
    rng = np.random.default_rng(random_state)
    reference = np.asarray(score(X), dtype=np.float64)

    def change(chosen: list[np.ndarray]) -> np.ndarray:
        deleted = []
        for x, rows in zip(items, chosen):
            x = x.copy()
            x[rows] = fill
            deleted.append(x)
        return np.abs(np.asarray(score(rebuild(deleted)), dtype=np.float64) - reference)

    counts = [max(1, math.ceil(fraction * len(x))) for x in items]
    importance = [np.nan_to_num(w.sum(1), nan=-np.inf) for w in weights]
    top = change([np.argsort(-imp, kind="stable")[:k] for imp, k in zip(importance, counts)])
    random = np.mean([change([rng.choice(len(x), k, replace=False)
                              for x, k in zip(items, counts)]) for _ in range(n_random)], axis=0)
    top_mean, random_mean = float(top.mean()), float(random.mean())
    return {"top": top_mean, "random": random_mean,
            "ratio": top_mean / random_mean if random_mean > 0 else float("inf")}
