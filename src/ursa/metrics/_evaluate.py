"""The headline metrics of a fitted estimator on a data set, whatever its job.

:func:`evaluate` is what ``ursa evaluate`` prints and what the HTML report's tables show: for an
autoencoder the reconstruction error (and, given labels, how well k-means on the embeddings
recovers them); for a clusterer the assignment confidence, the silhouette and, given labels, NMI,
ARI and accuracy; for a GAN the moments of real against synthetic data and TimeGAN's
discriminative and predictive scores; for an anomaly detector the flagged steps and, given per-step
labels, AUC-ROC, AUC-PR and VUS-PR. The estimator's job comes from ursa's estimator table.

The per-job functions below take the model's outputs already computed, so that the report, which
draws figures from the same outputs, computes each of them once.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from .._registry import entry_for
from ..data import as_sequences, as_series
from ._anomaly import auc_pr, auc_roc, vus_pr
from ._clustering import (
    adjusted_rand_score,
    cluster_accuracy,
    normalized_mutual_info_score,
    silhouette_score,
)
from ._generation import discriminative_score, predictive_score

__all__ = ["Metric", "evaluate", "metric_table"]


class Metric(NamedTuple):
    """One headline metric: its name, its value and a note on how to read it.

    ``value`` is a float, an int, a ``(real, synthetic)`` pair of floats, or None where the
    estimator has no such value (e.g. a detector without a threshold). ``shown``, when set, is
    how the value is written (e.g. ``"12 of 400"`` for a count out of a total).
    """

    name: str
    value: object
    note: str = ""
    shown: str | None = None

    @property
    def text(self) -> str:
        """The value as the report and ``ursa evaluate`` show it: ``shown`` when set, else
        floats to 4 significant digits, a pair as ``a / b``, None as ``-``."""
        return format_value(self.value) if self.shown is None else self.shown


def format_value(value) -> str:
    """``value`` as text: floats to 4 significant digits, a pair as ``a / b``, None as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return " / ".join(format_value(v) for v in value)
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return str(value)


def evaluate(estimator, X, y=None, *, random_state=0, generation_scores=True,
             verbose=True) -> dict:
    """The headline metrics of a fitted estimator's job on ``X``.

    Parameters
    ----------
    estimator : fitted ursa estimator
        Any estimator of ``ursa``'s estimator table (autoencoder, clusterer, GAN, detector).
    X : array-like or list of array-like
        Sequences, as the estimator's ``fit`` takes them; for a GAN, real data to compare its
        samples with; for an anomaly detector, one or several long series.
    y : array-like, optional
        One label per sequence (classes), or for a detector per-step 0/1 anomaly labels (an
        array, or one array per series). Metrics against labels are computed only with them.
    random_state : int, default=0
        Seed of the GAN's samples and of the post-hoc networks of its scores.
    generation_scores : bool, default=True
        For a GAN fitted on equal-length data: also compute TimeGAN's discriminative and
        predictive scores (one repeat each). Each trains a post-hoc recurrent network for
        thousands of steps; False skips them.
    verbose : bool, default=True
        Progress bars (with the time left) for the GAN's post-hoc scores, which take minutes.

    Returns
    -------
    dict of str to value
        Metric name to value, in a fixed order per job: floats, ints, or ``(real, synthetic)``
        pairs (see :class:`Metric`). A detector given several series names each metric
        ``"series i: <name>"``.

    Raises
    ------
    TypeError
        ``estimator`` is not an ursa estimator.
    sklearn.exceptions.NotFittedError
        ``estimator`` is not fitted.
    """
    rows = metric_table(estimator, X, y, random_state=random_state,
                        generation_scores=generation_scores, verbose=verbose)
    return {row.name: row.value for row in rows}


def metric_table(estimator, X, y=None, *, random_state=0, generation_scores=True,
                 verbose=True) -> list[Metric]:
    """:func:`evaluate`'s metrics as :class:`Metric` rows, each with a note on how to read it.

    Parameters and errors are those of :func:`evaluate`.
    """
    task = entry_for(estimator).task
    estimator._check_is_fitted()
    return _JOBS[task](estimator, X, y, random_state, generation_scores, verbose)


# ------------------------------------------------------------------------------------------
# autoencoder


def reconstruction_metrics(X, reconstruction, errors) -> list[Metric]:
    """Reconstruction error relative to the data's variance, and the per-sequence errors."""
    seqs = as_sequences(X, name="X")
    values = seqs.to_padded()
    rebuilt = as_sequences(reconstruction, name="reconstruction").to_padded()
    mask = seqs.mask()
    total = values[mask]
    # Relative error: 1.0 is what predicting each feature's mean would score.
    relative = float(np.mean((rebuilt[mask] - total) ** 2)
                     / max(np.var(total, axis=0).mean(), 1e-12))
    return [
        Metric("relative reconstruction error", relative, "1.0 = per-feature mean"),
        Metric("per-sequence error (scaled), median", float(np.median(errors)),
               f"max {format_value(np.max(errors))} (sequence {int(np.argmax(errors))})"),
    ]


def embedding_metrics(codes, y) -> list[Metric]:
    """With labels: NMI of k-means on the embeddings (k = number of classes) against them."""
    if y is None:
        return []
    from sklearn.cluster import KMeans

    k = len(np.unique(y))
    if not 1 < k < len(codes):
        return []
    predicted = KMeans(k, n_init=10, random_state=0).fit_predict(codes)
    return [Metric(f"k-means NMI on embeddings (k={k})",
                   normalized_mutual_info_score(y, predicted), "1.0 = labels recovered")]


def token_metrics(X, reconstruction, errors) -> list[Metric]:
    """For token sequences: the share of tokens rebuilt exactly and the per-sequence mean
    negative log-likelihood."""
    pairs = [(a, b) for x, r in zip(X, reconstruction) for a, b in zip(list(x), r)]
    accuracy = float(np.mean([str(a) == str(b) for a, b in pairs]))
    return [
        Metric("tokens rebuilt exactly", accuracy, "share of every sequence's tokens"),
        Metric("per-sequence negative log-likelihood, median", float(np.median(errors)),
               f"nats per token; max {format_value(np.max(errors))} (sequence "
               f"{int(np.argmax(errors))})"),
    ]


def _autoencoder(model, X, y, random_state, generation_scores, verbose):
    metrics = token_metrics if model._tokens else reconstruction_metrics
    rows = metrics(X, model.reconstruct(X), model.decision_function(X))
    return rows + embedding_metrics(model.transform(X), y)


# ------------------------------------------------------------------------------------------
# clusterer


def cluster_metrics(labels, proba, codes, y) -> list[Metric]:
    """Assignment confidence and latent silhouette; NMI, ARI and accuracy against labels."""
    rows = [Metric("mean assignment confidence", float(proba.max(axis=1).mean()),
                   "mean of the largest predict_proba per sequence")]
    if 1 < len(np.unique(labels)) < len(labels):
        rows.append(Metric("silhouette (latent space)", silhouette_score(codes, labels),
                           "-1 .. 1, higher = better separated"))
    if y is not None:
        rows += [Metric("NMI vs labels", normalized_mutual_info_score(y, labels)),
                 Metric("ARI vs labels", adjusted_rand_score(y, labels)),
                 Metric("cluster accuracy vs labels", cluster_accuracy(y, labels),
                        "Hungarian matching")]
    return rows


def _clusterer(model, X, y, random_state, generation_scores, verbose):
    labels = np.asarray(model.predict(X))
    proba = np.asarray(model.predict_proba(X))
    return cluster_metrics(labels, proba, model.transform(X), y)


# ------------------------------------------------------------------------------------------
# GAN


def generation_samples(model, X, random_state):
    """``(real, synthetic, equal)``: up to 500 real sequences of ``X``, as many sampled from the
    model (as long as the data when it has one length), and whether it has one length."""
    seqs = as_sequences(X, name="X")
    n = int(min(len(seqs), 500))
    equal = bool(np.all(seqs.lengths == seqs.lengths[0]))
    synthetic = model.sample(n, n_timesteps=int(seqs.lengths[0]) if equal else None,
                             random_state=random_state)
    real = X[:n] if not isinstance(X, (list, tuple)) else list(X)[:n]
    return real, synthetic, equal


def generation_metrics(model, real, synthetic, *, equal, random_state,
                       scores=True, verbose=True) -> list[Metric]:
    """Mean and standard deviation of real and synthetic values; with ``scores`` and equal
    lengths, TimeGAN's discriminative and predictive scores (one repeat each)."""
    R = as_sequences(real, name="real").to_padded()
    S = as_sequences(synthetic, name="synthetic").to_padded()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rows = [Metric("mean, real / synthetic", (float(np.nanmean(R)), float(np.nanmean(S)))),
                Metric("std, real / synthetic", (float(np.nanstd(R)), float(np.nanstd(S))))]
    if not (equal and scores):
        return rows
    # The post-hoc network trains where the model's networks are.
    device = next(model.network_.parameters()).device
    for score, note in (
            (discriminative_score,
             "|accuracy - 0.5| of a post-hoc GRU classifier; 0 = indistinguishable"),
            (predictive_score,
             "MAE of a GRU trained on synthetic, tested on real (one step ahead)")):
        value = score(R, S, n_repeats=1, random_state=random_state or 0, device=device,
                      verbose=verbose)
        name = score.__name__.replace("_", " ") + " (1 repeat)"
        rows.append(Metric(name, value.mean, note))
    return rows


def token_generation_metrics(model, X, random_state) -> list[Metric]:
    """For token sequences: as many samples as ``X`` holds (at most 500), the share of them that
    are distinct, and the share whose every bigram (with start and end markers) occurs in
    ``X``."""
    real = list(X)[:500]
    synthetic = model.sample(len(real), random_state=random_state)

    def bigrams(sequence):
        marked = ["<start>", *map(str, sequence), "<end>"]
        return set(zip(marked[:-1], marked[1:]))

    seen = set().union(*(bigrams(x) for x in real))
    return [Metric("distinct samples", len({tuple(s) for s in synthetic}) / len(synthetic),
                   f"real: {len({tuple(map(str, x)) for x in real}) / len(real):.3f}"),
            Metric("samples with only seen bigrams",
                   float(np.mean([bigrams(s) <= seen for s in synthetic])),
                   "bigrams of X, with start and end markers")]


def _gan(model, X, y, random_state, generation_scores, verbose):
    if model._tokens:
        return token_generation_metrics(model, X, random_state)
    real, synthetic, equal = generation_samples(model, X, random_state)
    return generation_metrics(model, real, synthetic, equal=equal, random_state=random_state,
                              scores=generation_scores, verbose=verbose)


# ------------------------------------------------------------------------------------------
# anomaly detector


def _label_list(y) -> list[np.ndarray]:
    """Per-step labels as one array per series: a list's items or a 3-D array's rows, as the
    series of a detector's input are laid out; any other array is the labels of one series."""
    if isinstance(y, (list, tuple)):
        return [np.asarray(item) for item in y]
    array = np.asarray(y)
    return list(array) if array.ndim == 3 else [array]


def detector_outputs(model, X, y, limit=None):
    """Yield ``(values, scores, flags, truth)`` for each series of ``X`` (the first ``limit``):
    the series, its per-step scores and 0/1 flags, and its labels from ``y`` when ``y`` holds an
    array of the series' length for it, else None."""
    series, _, _ = as_series(X)
    labels = None if y is None else _label_list(y)
    for i, values in enumerate(series[:limit]):
        scores = np.asarray(model.decision_function(values), dtype=np.float64).reshape(-1)
        flags = np.asarray(model.predict(values)).reshape(-1)
        truth = None
        if labels is not None and i < len(labels) and labels[i].size == len(scores):
            truth = labels[i].reshape(-1).astype(int)
        yield values, scores, flags, truth


def detection_metrics(scores, flags, threshold, truth, what: str = "steps") -> list[Metric]:
    """Flagged steps (or sessions) and the threshold; with both classes in ``truth``, AUC-ROC
    and AUC-PR over the scores that are finite, and VUS-PR for steps when every score is."""
    flagged = int(flags.sum())
    rows = [Metric(f"flagged {what}", flagged, f"{flags.mean():.2%}",
                   f"{flagged} of {len(flags)}"),
            Metric("threshold", None if threshold is None else float(threshold))]
    if truth is None or not 0 < truth.sum() < len(truth):
        return rows
    finite = np.isfinite(scores)
    rows += [Metric("AUC-ROC", auc_roc(truth[finite], scores[finite])),
             Metric("AUC-PR", auc_pr(truth[finite], scores[finite]),
                    f"random = {truth.mean():.3f}")]
    if finite.all() and what == "steps":
        rows.append(Metric("VUS-PR", vus_pr(truth, scores), "Paparrizos et al. 2022"))
    return rows


def _detector(model, X, y, random_state, generation_scores, verbose):
    threshold = getattr(model, "threshold_", None)
    if model.window_ is None:  # whole sessions: one score, and one 0/1 label, per sequence
        scores = model.decision_function(X)
        flags = model._flags(scores) if threshold is not None else np.zeros(len(scores), int)
        truth = None if y is None else np.asarray(y).reshape(-1).astype(int)
        if truth is not None and len(truth) != len(scores):
            raise ValueError(f"y has {len(truth)} labels but X holds {len(scores)} sessions; "
                             "pass one 0/1 label per session.")
        return detection_metrics(scores, flags, threshold, truth, what="sessions")
    per_series = [detection_metrics(scores, flags, threshold, truth)
                  for _, scores, flags, truth in detector_outputs(model, X, y)]
    if len(per_series) == 1:
        return per_series[0]
    return [row._replace(name=f"series {i}: {row.name}")
            for i, rows in enumerate(per_series) for row in rows]


_JOBS = {"autoencoder": _autoencoder, "cluster": _clusterer, "gan": _gan, "detect": _detector}
