"""Figures for fitted estimators: matplotlib with the Agg backend, imported inside each function.

Every function takes arrays (or a fitted estimator's ``history_``), returns a
``matplotlib.figure.Figure`` and, when ``path`` is given, also writes it there as PNG. Figures are
built with the object API (``matplotlib.figure.Figure``), never ``pyplot``, so that no GUI backend
and no global figure state is involved: they can be drawn from threads and servers.

Functions
---------
training_curves
    Losses of ``history_``, one panel per training stage or phase, per epoch or iteration.
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
    "attributions",
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
            squeeze: bool = True, sharex: bool = False, compact: bool = False):
    """A constrained-layout figure of ``n_rows`` x ``n_cols`` panels, each ``width`` x ``height``
    inches; ``compact`` uses small tick labels (for small panels)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is a dependency; this guards odd installs
        raise ImportError(
            "ursa.plots needs matplotlib: pip install matplotlib (or reinstall ursa)."
        ) from None
    fig = Figure(figsize=(width * n_cols if n_cols > 1 else width, height * n_rows),
                 layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=squeeze, sharex=sharex)
    if compact:
        for ax in np.ravel(axes):
            ax.tick_params(labelsize="small")
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


def _numeric(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _stages(history) -> list[tuple[str, list]]:
    """Consecutive records of one training stage or phase, as ``(label, records)`` pairs.

    A record names its stage with ``stage`` (the clusterer's pretraining and clustering) or its
    phase with ``phase`` (the GAN's); records that name neither form one unnamed stage.
    """
    groups = []
    for record in history:
        name = record.get("stage", record.get("phase"))
        kind = "stage" if "stage" in record else "phase" if "phase" in record else ""
        label = f"{name} {kind}" if kind else ""
        if groups and groups[-1][0] == label:
            groups[-1][1].append(record)
        else:
            groups.append((label, [record]))
    return groups


def _loss_columns(records) -> list[str]:
    """The columns a panel draws: the numeric ``*loss*`` columns (others only when no loss is
    logged); ``train_loss`` is left out where it repeats another column record for record."""
    keys = []
    for record in records:
        for key, value in record.items():
            if key not in _NOT_LOSSES and key not in keys and _numeric(value):
                keys.append(key)
    losses = [k for k in keys if "loss" in k]
    keys = losses or keys
    if "train_loss" in keys and any(
            all(r.get(k) == r.get("train_loss") for r in records)
            for k in keys if k != "train_loss"):
        keys.remove("train_loss")
    return keys


def _x_axis(records) -> tuple[np.ndarray, str]:
    """Positions and axis label of a stage's records: the logged iteration numbers for an
    iteration phase, else the pass number within the stage."""
    if all(_numeric(r.get("iteration")) for r in records):
        return np.array([r["iteration"] for r in records], dtype=np.float64), "iteration"
    unit = "epoch" if all("epoch" in r for r in records) else "record"
    return np.arange(1, len(records) + 1, dtype=np.float64), unit


def training_curves(history, path=None, title: str = "Training"):
    """Training losses, one panel per training stage or phase, each on its own axes.

    Parameters
    ----------
    history : list of dict
        A fitted estimator's ``history_``. Records are grouped into consecutive stages by their
        ``stage`` or ``phase`` key; stages have different objectives, so each gets a panel
        with its own loss axis. The x axis counts epochs (passes over the data, from 1 in each
        stage) or, for records with an ``iteration`` key, the logged iteration numbers. Every
        numeric column whose name contains ``loss`` is a curve (other numeric columns only
        when no loss is logged); ``train_loss`` is not drawn twice when it repeats another
        column. A panel's y axis is logarithmic only when its positive values span a factor
        of 10 or more.
    path : str or os.PathLike, optional
        Where to write the PNG.
    title : str, default="Training"
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(history, (list, tuple)) or not history:
        raise ValueError("history must be a non-empty list of dicts (an estimator's history_); "
                         "fit the estimator first.")
    for i, record in enumerate(history):
        if not isinstance(record, dict):
            raise TypeError(f"history[{i}] must be a dict, got {type(record).__name__}.")
    panels = [(label, records, _loss_columns(records)) for label, records in _stages(history)]
    panels = [panel for panel in panels if panel[2]]
    if not panels:
        raise ValueError("history has no numeric loss columns to plot.")
    colours = {}
    for _, _, keys in panels:
        for key in keys:
            colours.setdefault(key, f"C{len(colours) % 10}")
    several = len(panels) > 1
    fig, axes = _figure(1, len(panels), width=2.1 if several else 3.4, height=2.3,
                        squeeze=False, compact=True)
    for ax, (label, records, keys) in zip(axes[0], panels):
        x, unit = _x_axis(records)
        values = []
        for key in keys:
            y = np.array([r.get(key, np.nan) for r in records], dtype=np.float64)
            values.append(y[np.isfinite(y)])
            ax.plot(x, y, marker="o" if len(x) < 30 else None, markersize=3, color=colours[key],
                    label=key)
        values = np.concatenate(values)
        if len(values) and values.min() > 0 and values.max() / values.min() >= 10:
            from matplotlib.ticker import NullFormatter

            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(unit)
        ax.grid(alpha=0.3)
        if label:
            ax.set_title(label, fontsize="medium")
    axes[0, 0].set_ylabel("loss" if any("loss" in k for _, _, ks in panels for k in ks)
                          else "value")
    if several or panels[0][0]:
        fig.suptitle(title)
    else:
        axes[0, 0].set_title(title)
    if several:
        handles = {}
        for ax in axes[0]:
            for line in ax.get_lines():
                handles.setdefault(line.get_label(), line)
        # As many columns as the figure's width holds; the figure grows by the legend's rows.
        name_inches = 0.065 * max(map(len, handles)) + 0.45
        columns = max(1, min(len(handles), int(fig.get_figwidth() // name_inches)))
        fig.set_figheight(fig.get_figheight() + 0.2 * -(-len(handles) // columns))
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncol=columns, fontsize="small", frameon=False)
    else:
        axes[0, 0].legend(fontsize="small")
    return _finish(fig, path)


def reconstructions(X, X_hat, n: int = 4, path=None, max_features: int = 3):
    """The first ``n`` sequences (solid) and their reconstruction (dashed), one panel each,
    two panels per row.

    ``X`` and ``X_hat`` share a layout: (n, T, C) / (n, T) arrays, NaN-padded arrays or lists.
    At most ``max_features`` channels are drawn per panel.
    """
    n = check_count(n, "n")
    max_features = check_count(max_features, "max_features")
    A, B = _padded(X, "X"), _padded(X_hat, "X_hat")
    if A.shape != B.shape:
        raise ValueError(f"X_hat must have the shape of X: X is {A.shape}, X_hat is {B.shape}.")
    n = min(n, len(A))
    n_cols = 1 if n == 1 else 2
    n_rows = -(-n // n_cols)
    fig, axes = _figure(n_rows, n_cols, width=1.7 if n_cols > 1 else 3.4, height=1.25,
                        squeeze=False, compact=True)
    axes = axes.reshape(-1)
    for ax in axes[n:]:
        fig.delaxes(ax)
    colours = [f"C{i}" for i in range(10)]
    for i in range(n):
        ax = axes[i]
        for c in range(min(max_features, A.shape[2])):
            ax.plot(A[i, :, c], color=colours[c % 10], lw=1.4, label=f"f{c}" if i == 0 else None)
            ax.plot(B[i, :, c], color=colours[c % 10], lw=1.4, ls="--")
        ax.set_ylabel(f"#{i}")
        ax.grid(alpha=0.3)
        if i >= n - n_cols:
            ax.set_xlabel("time step", fontsize="small")
    fig.suptitle("original (solid) vs reconstruction (dashed)", fontsize="medium")
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
    fig, ax = _figure(width=3.4, height=2.8)
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


def cluster_prototypes(X, labels, path=None, max_features: int = 3, prototypes=None):
    """Per cluster: the members' mean sequence and a ±1 standard deviation band (one panel per
    cluster: two per row up to four clusters, else four per row), and with ``prototypes`` the
    model's own prototype of each cluster (dashed; e.g. ``RecurrentClusterer.prototypes``).

    Steps after a sequence's end do not count; panels share the y axis.

    Parameters
    ----------
    X : array of shape (n, T[, C]), NaN-padded array, or list of sequences
    labels : array of shape (n,)
    prototypes : array of shape (n_clusters, T', C), optional
        One sequence per cluster, in the order of the sorted labels.
    """
    max_features = check_count(max_features, "max_features")
    A = _padded(X, "X")
    labels = np.asarray(labels)
    if labels.shape != (len(A),):
        raise ValueError(f"labels must have shape ({len(A)},) (one per sequence of X), "
                         f"got {labels.shape}.")
    if prototypes is not None:
        prototypes = np.asarray(prototypes, dtype=np.float64)
        if prototypes.ndim == 2:
            prototypes = prototypes[:, :, None]
        if prototypes.ndim != 3 or prototypes.shape[2] != A.shape[2] \
                or len(prototypes) <= int(np.max(labels)):
            raise ValueError(f"prototypes must have shape (n_clusters, T, {A.shape[2]}) with a "
                             f"row for every label, got {prototypes.shape}.")
    clusters = np.unique(labels)
    n_cols = min(len(clusters), 2 if len(clusters) <= 4 else 4)
    fig, axes = _figure(-(-len(clusters) // n_cols), n_cols, width=1.7, height=1.5,
                        squeeze=False, compact=True)
    axes = axes.reshape(-1)
    for ax in axes[len(clusters):]:
        fig.delaxes(ax)
    axes = axes[: len(clusters)]
    import warnings

    for k, value in enumerate(clusters):
        ax = axes[k]
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
            if prototypes is not None:
                ax.plot(prototypes[int(value), :, c], color="k", lw=1.1, ls="--",
                        label="prototype" if k == 0 and c == 0 else None)
        ax.set_title(f"cluster {value} (n={len(members)})", fontsize="small")
        if prototypes is not None and k == 0:
            ax.legend(fontsize="x-small")
        ax.grid(alpha=0.3)
        if k >= len(clusters) - n_cols:
            ax.set_xlabel("time step", fontsize="small")
    ymin, ymax = np.inf, -np.inf
    for ax in axes:
        lo, hi = ax.get_ylim()
        ymin, ymax = min(ymin, lo), max(ymax, hi)
    for ax in axes:
        ax.set_ylim(ymin, ymax)
    return _finish(fig, path)


def attributions(X, attributions, n: int = 4, path=None, max_features: int = 3,
                 titles=None):
    """The first ``n`` sequences with their attributions (``explain(X).attributions``) as a
    heat map behind each: red steps raised the explained score, blue ones lowered it (summed
    over channels; one colour scale per panel).

    Parameters
    ----------
    X, attributions : arrays of shape (n, T[, C]), NaN-padded arrays, or lists, laid out alike
    n : int, default=4
    titles : list of str, optional
        One title per drawn panel.
    """
    n = check_count(n, "n")
    max_features = check_count(max_features, "max_features")
    A, W = _padded(X, "X"), _padded(attributions, "attributions")
    if A.shape != W.shape:
        raise ValueError(f"attributions must have the shape of X: X is {A.shape}, "
                         f"attributions is {W.shape}.")
    n = min(n, len(A))
    if titles is not None and len(titles) < n:
        raise ValueError(f"titles must have at least {n} entries (one per panel), got "
                         f"{len(titles)}.")
    fig, axes = _figure(n, 1, width=3.4, height=0.75, squeeze=False, sharex=True, compact=True)
    axes = axes.reshape(-1)
    for i in range(n):
        ax = axes[i]
        weight = np.nansum(W[i], axis=1)  # (T,)
        valid = ~np.isnan(A[i]).all(axis=1)
        top = float(np.max(np.abs(weight[valid]))) if valid.any() else 0.0
        for c in range(min(max_features, A.shape[2])):
            ax.plot(A[i, :, c], color=f"C{c % 10}", lw=1.1)
        lo, hi = np.nanmin(A[i]) if valid.any() else 0.0, np.nanmax(A[i]) if valid.any() else 1.0
        pad = 0.05 * (hi - lo or 1.0)
        ax.imshow(np.where(valid, weight, np.nan)[None, :], aspect="auto", cmap="RdBu_r",
                  vmin=-(top or 1.0), vmax=top or 1.0, alpha=0.55, interpolation="nearest",
                  extent=(-0.5, len(weight) - 0.5, lo - pad, hi + pad), origin="lower")
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_ylabel(f"#{i}", fontsize="small")
        if titles is not None:
            ax.set_title(titles[i], fontsize="small")
    axes[n - 1].set_xlabel("time step", fontsize="small")
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
    fig, axes = _figure(1, 2, width=2.2, height=2.4, compact=True)
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
    ax.set_title("traces (feature 0)")
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
    fig, (top, bottom) = _figure(2, 1, width=7.2, height=1.35, sharex=True, compact=True)
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
