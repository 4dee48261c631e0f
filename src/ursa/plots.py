"""Figures for fitted estimators: matplotlib with the Agg backend, imported inside each function.

Every function takes arrays (or a fitted estimator's ``history_``), returns a
``matplotlib.figure.Figure`` and, when ``path`` is given, also writes it there as PNG. Figures are
built with the object API (``matplotlib.figure.Figure``), never ``pyplot``, so that no GUI backend
and no global figure state is involved: they can be drawn from threads and servers.

Functions
---------
training_curves
    Loss per epoch (every numeric column of ``history_``: per-phase losses for a GAN).
reconstructions
    Original sequences beside their reconstruction.
embedding_map
    2-D map (PCA, or t-SNE when asked) of embeddings, coloured by cluster or label.
cluster_prototypes
    Mean and spread (±1 standard deviation) of the sequences of each cluster.
real_vs_synthetic
    PCA / t-SNE overlay of real and synthetic sequences, and a few traces of each.
anomaly_timeline
    Series, per-step score, threshold, flagged regions and the channels that drove each flag.
"""

from __future__ import annotations

import io
import os

import numpy as np

from ._params import check_count

__all__ = [
    "anomaly_timeline",
    "cluster_prototypes",
    "embedding_map",
    "figure_to_png",
    "real_vs_synthetic",
    "reconstructions",
    "training_curves",
]

# history_ columns that are not losses.
_NOT_LOSSES = {"epoch", "seconds", "iteration", "phase", "lr", "learning_rate"}


def _figure(n_rows: int = 1, n_cols: int = 1, *, width: float = 6.4, height: float = 3.6,
            squeeze: bool = True, sharex: bool = False):
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is a dependency; this guards odd installs
        raise ImportError(
            "ursa.plots needs matplotlib: pip install matplotlib (or reinstall ursa)."
        ) from None
    fig = Figure(figsize=(width * n_cols if n_cols > 1 else width, height * n_rows),
                 layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=squeeze, sharex=sharex)
    return fig, axes


def figure_to_png(fig, path=None, dpi: int = 100) -> bytes:
    """Render ``fig`` as PNG bytes with the Agg backend; also write them to ``path`` when given."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    data = buffer.getvalue()
    if path is not None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}.")
        with open(path, "wb") as fh:
            fh.write(data)
    return data


def _finish(fig, path):
    if path is not None:
        figure_to_png(fig, path)
    return fig


def _padded(X, name: str) -> np.ndarray:
    """Any sequence input as float (n, T, C) with NaN after each end (so plots skip padding)."""
    from .data import as_sequences

    return as_sequences(X, name=name, allow_nan=True).to_padded().astype(np.float64)


def _project_2d(Z: np.ndarray, method: str, random_state, name: str = "Z") -> np.ndarray:
    if method not in ("pca", "tsne"):
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}.")
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_dims), got shape {Z.shape}.")
    if len(Z) < 2:
        raise ValueError(f"{name} needs at least 2 rows to draw a map, got {len(Z)}.")
    if not np.isfinite(Z).all():
        row = int(np.flatnonzero(~np.isfinite(Z).all(axis=1))[0])
        raise ValueError(f"{name}[{row}] holds NaN or infinite values; pass finite values.")
    if Z.shape[1] == 1:
        return np.column_stack([Z[:, 0], np.zeros(len(Z))])
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(2, random_state=0).fit_transform(Z) if Z.shape[1] > 2 else Z
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (len(Z) - 1) / 3)))
    return TSNE(2, perplexity=perplexity, init="pca",
                random_state=random_state).fit_transform(Z)


# ------------------------------------------------------------------------------------------


def training_curves(history, path=None, title: str = "Training"):
    """Loss per epoch.

    Parameters
    ----------
    history : list of dict
        A fitted estimator's ``history_`` (one dict per epoch or iteration block). Every numeric
        key except ``epoch``/``seconds`` is drawn as one curve; keys ending in ``_loss`` share the
        left axis, so a GAN's per-phase losses appear side by side.
    path : str or os.PathLike, optional
        Where to write the PNG.
    """
    if not isinstance(history, (list, tuple)) or not history:
        raise ValueError("history must be a non-empty list of dicts (an estimator's history_); "
                         "fit the estimator first.")
    for i, record in enumerate(history):
        if not isinstance(record, dict):
            raise TypeError(f"history[{i}] must be a dict, got {type(record).__name__}.")
    keys = []
    for record in history:
        for key, value in record.items():
            if (key not in _NOT_LOSSES and key not in keys and isinstance(value, (int, float))
                    and not isinstance(value, bool)):
                keys.append(key)
    losses = [k for k in keys if "loss" in k]
    keys = losses or keys  # other numeric columns (label_change...) only when no loss is logged
    if not keys:
        raise ValueError("history has no numeric loss columns to plot.")
    fig, ax = _figure()
    x = np.arange(1, len(history) + 1)
    positive = True
    for key in keys:
        y = np.array([r.get(key, np.nan) for r in history], dtype=np.float64)
        positive &= bool(np.all(y[np.isfinite(y)] > 0))
        ax.plot(x, y, marker="o" if len(x) < 30 else None, markersize=3, label=key)
    if positive:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return _finish(fig, path)


def reconstructions(X, X_hat, n: int = 4, path=None, max_features: int = 3):
    """The first ``n`` sequences (solid) and their reconstruction (dashed), one panel each.

    ``X`` and ``X_hat`` share a layout: (n, T, C) / (n, T) arrays, NaN-padded arrays or lists.
    At most ``max_features`` channels are drawn per panel.
    """
    n = check_count(n, "n")
    max_features = check_count(max_features, "max_features")
    A, B = _padded(X, "X"), _padded(X_hat, "X_hat")
    if A.shape != B.shape:
        raise ValueError(f"X_hat must have the shape of X: X is {A.shape}, X_hat is {B.shape}.")
    n = min(n, len(A))
    fig, axes = _figure(n, 1, height=1.9, squeeze=False)
    colours = [f"C{i}" for i in range(10)]
    for i in range(n):
        ax = axes[i, 0]
        for c in range(min(max_features, A.shape[2])):
            ax.plot(A[i, :, c], color=colours[c % 10], lw=1.4, label=f"f{c}" if i == 0 else None)
            ax.plot(B[i, :, c], color=colours[c % 10], lw=1.4, ls="--")
        ax.set_ylabel(f"#{i}")
        ax.grid(alpha=0.3)
    axes[0, 0].set_title("original (solid) vs reconstruction (dashed)")
    axes[-1, 0].set_xlabel("time step")
    return _finish(fig, path)


def embedding_map(Z, labels=None, method: str = "pca", path=None, random_state=0,
                  title: str | None = None):
    """Embeddings in two dimensions (PCA, or t-SNE with ``method="tsne"``), coloured by label.

    Parameters
    ----------
    Z : array of shape (n_samples, n_dims)
    labels : array of shape (n_samples,), optional
        Cluster labels or classes; one colour each.
    """
    points = _project_2d(Z, method, random_state)
    fig, ax = _figure(width=5.6, height=4.6)
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=14, alpha=0.8)
    else:
        labels = np.asarray(labels)
        if labels.shape != (len(points),):
            raise ValueError(f"labels must have shape ({len(points)},) (one per row of Z), "
                             f"got {labels.shape}.")
        for k, value in enumerate(np.unique(labels)):
            chosen = labels == value
            ax.scatter(points[chosen, 0], points[chosen, 1], s=14, alpha=0.8, color=f"C{k % 10}",
                       label=str(value))
        ax.legend(fontsize="small", title="label", markerscale=1.5)
    ax.set_title(title or f"embeddings ({'PCA' if method == 'pca' else 't-SNE'})")
    ax.set_xticks([])
    ax.set_yticks([])
    return _finish(fig, path)


def cluster_prototypes(X, labels, path=None, max_features: int = 3):
    """Per cluster: the mean sequence and a ±1 standard deviation band (one panel per cluster).

    Steps after a sequence's end do not count; panels share the y axis.
    """
    max_features = check_count(max_features, "max_features")
    A = _padded(X, "X")
    labels = np.asarray(labels)
    if labels.shape != (len(A),):
        raise ValueError(f"labels must have shape ({len(A)},) (one per sequence of X), "
                         f"got {labels.shape}.")
    clusters = np.unique(labels)
    fig, axes = _figure(1, len(clusters), width=3.2, height=3.0, squeeze=False)
    import warnings

    for k, value in enumerate(clusters):
        ax = axes[0, k]
        members = A[labels == value]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps past every end
            mean = np.nanmean(members, axis=0)
            spread = np.nanstd(members, axis=0)
        steps = np.arange(A.shape[1])
        for c in range(min(max_features, A.shape[2])):
            ax.plot(steps, mean[:, c], color=f"C{c % 10}", lw=1.5)
            ax.fill_between(steps, mean[:, c] - spread[:, c], mean[:, c] + spread[:, c],
                            color=f"C{c % 10}", alpha=0.25, lw=0)
        ax.set_title(f"cluster {value} (n={len(members)})", fontsize="medium")
        ax.grid(alpha=0.3)
        ax.set_xlabel("time step")
    ymin, ymax = np.inf, -np.inf
    for ax in axes[0]:
        lo, hi = ax.get_ylim()
        ymin, ymax = min(ymin, lo), max(ymax, hi)
    for ax in axes[0]:
        ax.set_ylim(ymin, ymax)
    return _finish(fig, path)


def _real_vs_synthetic_2d(real, synthetic, method, random_state):
    """Use ursa.metrics.real_vs_synthetic_embedding when the GAN's metrics provide it."""
    from . import metrics

    embed = getattr(metrics, "real_vs_synthetic_embedding", None)
    if embed is not None:
        return embed(real, synthetic, method=method, random_state=random_state)
    # Same view as the TimeGAN paper: each sequence reduced to its per-step mean over features.
    R, S = _padded(real, "real"), _padded(synthetic, "synthetic")
    if R.shape[1:] != S.shape[1:]:
        raise ValueError(f"real and synthetic must have the same (n_timesteps, n_features): "
                         f"{R.shape[1:]} vs {S.shape[1:]}.")
    both = np.nan_to_num(np.nanmean(np.concatenate([R, S]), axis=2))
    points = _project_2d(both, method, random_state, name="sequences")
    return points[: len(R)], points[len(R):]


def real_vs_synthetic(real, synthetic, method: str = "pca", path=None, n_traces: int = 3,
                      random_state=0):
    """Left: real and synthetic sequences overlaid in 2-D (PCA or t-SNE). Right: a few traces
    of each (first channel), real solid, synthetic dashed."""
    n_traces = check_count(n_traces, "n_traces")
    real_2d, synthetic_2d = _real_vs_synthetic_2d(real, synthetic, method, random_state)
    R, S = _padded(real, "real"), _padded(synthetic, "synthetic")
    fig, axes = _figure(1, 2, width=4.8, height=4.0)
    ax = axes[0]
    ax.scatter(real_2d[:, 0], real_2d[:, 1], s=10, alpha=0.5, color="C0", label="real")
    ax.scatter(synthetic_2d[:, 0], synthetic_2d[:, 1], s=10, alpha=0.5, color="C3",
               label="synthetic")
    ax.legend(fontsize="small")
    ax.set_title(f"real vs synthetic ({'PCA' if method == 'pca' else 't-SNE'})")
    ax.set_xticks([])
    ax.set_yticks([])
    ax = axes[1]
    for i in range(min(n_traces, len(R))):
        ax.plot(R[i, :, 0], color="C0", lw=1.2, alpha=0.9, label="real" if i == 0 else None)
    for i in range(min(n_traces, len(S))):
        ax.plot(S[i, :, 0], color="C3", lw=1.2, ls="--", alpha=0.9,
                label="synthetic" if i == 0 else None)
    ax.set_title("sample traces (feature 0)")
    ax.set_xlabel("time step")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return _finish(fig, path)


def _regions(flags: np.ndarray) -> list[tuple[int, int]]:
    """Runs of ones as (start, stop) half-open intervals."""
    padded = np.concatenate([[0], flags.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def anomaly_timeline(series, scores, threshold=None, flags=None, channel_shares=None, path=None,
                     max_features: int = 4, max_regions: int = 8, labels=None):
    """Series (top), per-step anomaly score with threshold (bottom), flagged regions shaded.

    Parameters
    ----------
    series : array of shape (T,) or (T, n_channels)
    scores : array of shape (T,)
        Per-step scores, higher = more abnormal (NaN where a step has no score).
    threshold : float, optional
        Drawn as a horizontal line; with no ``flags``, steps scoring above it are flagged.
    flags : array of shape (T,) of 0/1, optional
    channel_shares : array of shape (T, n_channels), optional
        Each channel's share of each step's score (a detector's ``explain``); the channel with
        the largest share over a flagged region is written above that region.
    labels : array of shape (T,) of 0/1, optional
        Known anomalies, drawn as a green bar under the score.
    """
    max_features = check_count(max_features, "max_features")
    values = np.asarray(series, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"series must have shape (T,) or (T, n_channels), got {values.shape}.")
    T = len(values)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (T,):
        raise ValueError(f"scores must have shape ({T},) (one per step of series), got "
                         f"{scores.shape}.")
    if flags is None:
        flags = (scores > threshold) if threshold is not None else np.zeros(T, dtype=bool)
    flags = np.asarray(flags).astype(bool)
    if flags.shape != (T,):
        raise ValueError(f"flags must have shape ({T},), got {flags.shape}.")
    if channel_shares is not None:
        channel_shares = np.asarray(channel_shares, dtype=np.float64)
        if channel_shares.shape != values.shape:
            raise ValueError(f"channel_shares must have shape {values.shape} (steps x channels "
                             f"of series), got {channel_shares.shape}.")
    fig, (top, bottom) = _figure(2, 1, width=9.0, height=2.4, sharex=True)
    steps = np.arange(T)
    for c in range(min(max_features, values.shape[1])):
        top.plot(steps, values[:, c], lw=0.9, color=f"C{c % 10}", label=f"channel {c}")
    top.set_ylabel("series")
    if values.shape[1] > 1:
        top.legend(fontsize="x-small", loc="upper right")
    bottom.plot(steps, scores, lw=0.9, color="k", label="score")
    if threshold is not None and np.isfinite(threshold):
        bottom.axhline(threshold, color="C3", ls="--", lw=1, label=f"threshold {threshold:.3g}")
    bottom.set_ylabel("anomaly score")
    bottom.set_xlabel("time step")
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if labels.shape != (T,):
            raise ValueError(f"labels must have shape ({T},) (one per step of series), got "
                             f"{labels.shape}.")
        for k, (start, stop) in enumerate(_regions(labels.astype(bool))):
            bottom.axvspan(start - 0.5, stop - 0.5, ymin=0, ymax=0.06, color="C2",
                           label="labelled anomaly" if k == 0 else None)
    regions = _regions(flags)
    for start, stop in regions:
        for ax in (top, bottom):
            ax.axvspan(start - 0.5, stop - 0.5, color="C3", alpha=0.2, lw=0)
    if channel_shares is not None:
        # Label the strongest regions only: a long series can have hundreds of short flags.
        strongest = sorted(regions, key=lambda r: -np.nanmax(scores[r[0]:r[1]]))[:max_regions]
        for start, stop in strongest:
            channel = int(np.argmax(np.nansum(channel_shares[start:stop], axis=0)))
            top.annotate(f"ch {channel}", xy=((start + stop - 1) / 2, 1.0),
                         xycoords=("data", "axes fraction"), ha="center", va="bottom",
                         fontsize="x-small", color="C3")
    bottom.legend(fontsize="x-small", loc="upper right")
    top.set_title(f"{len(regions)} flagged region(s)", fontsize="medium", pad=12)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return _finish(fig, path)
