"""RecurrentClusterer's helpers outside the estimator: the training sequences' smoothness, the
pooled encoder input computed once per fit, the starting centres (plain or private k-means), and
the clustering stage's target refresh."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.base import clone

from ..data import Sequences
from ..networks.clustering import clustering_inputs, target_distribution
from ..networks.recurrent import step_mask
from ..training import Callback, copy_weights

if TYPE_CHECKING:
    from .clusterer import RecurrentClusterer


def initial_centers(codes: np.ndarray, n_clusters: int, clusterer, rng: np.random.Generator
                    ) -> np.ndarray:
    """The clustering stage's starting centres: k-means++ (``KMeans(n_init=10)``) on the latent
    codes, or ``clusterer``'s ``cluster_centers_`` (or the mean code of each of its
    ``labels_``), seeded from ``rng`` when its ``random_state`` is None."""
    seed = int(rng.integers(2**31 - 1))
    if clusterer is None:
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit(codes)
        return model.cluster_centers_.astype(np.float32)
    model = clone(clusterer)
    if "random_state" in model.get_params() and model.get_params()["random_state"] is None:
        model.set_params(random_state=seed)
    if not hasattr(model, "fit"):
        raise TypeError("clusterer must have a fit method (a scikit-learn clusterer).")
    model.fit(codes)
    centers = getattr(model, "cluster_centers_", None)
    if centers is not None and np.shape(centers) == (n_clusters, codes.shape[1]):
        return np.asarray(centers, dtype=np.float32)
    labels = getattr(model, "labels_", None)
    if labels is None:
        raise ValueError(f"clusterer {type(model).__name__} has neither cluster_centers_ of shape "
                         f"({n_clusters}, {codes.shape[1]}) nor labels_ after fit; pass a "
                         "clusterer such as sklearn.cluster.KMeans or AgglomerativeClustering.")
    labels = np.asarray(labels)
    found = np.unique(labels[labels >= 0])
    if len(found) != n_clusters:
        raise ValueError(f"clusterer {type(model).__name__} found {len(found)} clusters on the "
                         f"latent codes but n_clusters={n_clusters}; configure it to find "
                         f"exactly {n_clusters} (e.g. its n_clusters parameter).")
    return np.stack([codes[labels == c].mean(0) for c in found]).astype(np.float32)


def _observed(seqs: Sequences) -> tuple[torch.Tensor, torch.Tensor]:
    """The sequences as float64 with missing values (NaN) zeroed, and the mask of the values
    to count: (B, T, 1) valid steps, or (B, T, C) valid and observed when values are missing."""
    values, lengths = seqs.tensors("cpu")
    values = values.double()
    valid = step_mask(lengths, values.size(1)).double().unsqueeze(-1)
    missing = torch.isnan(values)
    if bool(missing.any()):
        valid = valid * (~missing).double()
        values = values.nan_to_num(0.0)
    return values, valid


def _smoothness(seqs: Sequences) -> float:
    """Lag-1 autocorrelation of the sequences, 1 - mean((x_t - x_{t-1})^2) / (2 var(x)) per channel
    over the valid, observed steps (the variance over every such step of the set), averaged over
    the channels; a constant channel counts as smooth (1). 1 when no sequence has two steps."""
    values, valid = _observed(seqs)
    pairs = valid[:, 1:] * valid[:, :-1]  # both steps of the change are valid
    if pairs.sum() == 0:
        return 1.0
    count = valid.sum((0, 1)).clamp_min(1.0)
    mean = (values * valid).sum((0, 1)) / count
    variance = (((values - mean) * valid) ** 2).sum((0, 1)) / count  # (C,)
    step_change = ((((values[:, 1:] - values[:, :-1]) * pairs) ** 2).sum((0, 1))
                   / pairs.sum((0, 1)).clamp_min(1.0))
    rho = torch.where(variance > 1e-12, 1.0 - step_change / (2.0 * variance.clamp_min(1e-12)),
                      torch.ones_like(variance))
    return float(rho.mean())


def private_centers(codes: np.ndarray, n_clusters: int, radius: float, private,
                    iterations: int, rng: np.random.Generator) -> np.ndarray:
    """Differentially private k-means on codes that lie on the sphere of ``radius``.

    Every step releases sums and counts with Gaussian noise through ``private.release``, each
    sequence's contribution bounded by ``bound`` in L2 norm (counts scaled by it), so that one
    sequence moves a release by at most ``bound * sqrt(2)``. The first step releases the whole
    set's sum of codes (``bound = radius``); since the codes crowd on a small part of the
    sphere, the next ``iterations - 1`` Lloyd steps work on each code's offset from that noisy
    mean, clipped to twice the spread the mean's norm implies (which cuts the noise as much as
    the codes are crowded), the centres starting around the mean at half that spread.
    ``private.release_noise`` is the releases' noise multiplier.
    """
    latent = codes.shape[1]

    def noisy_stats(values, groups, k, bound):
        norms = np.linalg.norm(values, axis=1, keepdims=True)
        values = values * np.minimum(1.0, bound / np.maximum(norms, 1e-12))
        sums = np.zeros((k, latent))
        np.add.at(sums, groups, values)
        counts = np.bincount(groups, minlength=k) * bound
        noisy = private.release(torch.from_numpy(np.concatenate([sums.ravel(), counts])),
                                sensitivity=bound * np.sqrt(2.0)).numpy()
        return noisy[:-k].reshape(k, latent), np.maximum(noisy[-k:] / bound, 1.0)

    total, count = noisy_stats(codes, np.zeros(len(codes), dtype=np.int64), 1, radius)
    mean = total[0] / count[0]
    # Codes on a sphere at mean squared distance d^2 from each other have a mean of squared
    # norm radius^2 - d^2 / 2: the spread follows from the mean's norm.
    spread = np.sqrt(max(radius ** 2 - min(float(mean @ mean), radius ** 2), 1e-6))
    bound = min(2.0 * spread, 2.0 * radius)
    offsets = codes - mean
    centers = 0.5 * spread * rng.normal(size=(n_clusters, latent)) / np.sqrt(latent)
    # A cluster whose noisy count is within two noise deviations of zero keeps its centre: its
    # noisy mean would be mostly noise, thrown far from every code.
    min_count = 2.0 * private.release_noise * np.sqrt(2.0)
    for _ in range(iterations - 1):
        nearest = ((offsets[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)
        sums, counts = noisy_stats(offsets, nearest, n_clusters, bound)
        centers = np.where(counts[:, None] > min_count, sums / counts[:, None], centers)
    directions = mean[None] + centers
    norms = np.linalg.norm(directions, axis=1, keepdims=True)
    return (directions * radius / np.maximum(norms, 1e-12)).astype(np.float32)


def _pool_sequences(seqs: Sequences, size: int, features: str,
                    difference_scale: torch.Tensor | None = None) -> Sequences:
    """The encoder's input for every sequence (see ClusteringNet.inputs), computed once per fit."""
    if size == 1 and difference_scale is None:
        return seqs
    values, lengths = clustering_inputs(*seqs.tensors("cpu"), size, features, difference_scale)
    return Sequences(values.numpy().astype(np.float32), lengths.numpy().astype(np.int64))


class _TargetRefresh(Callback):
    """Recompute the target distribution p every ``update_interval`` epochs; stop on ``tol``.

    Its state (the target, the labels of the last refresh, the weights the stage started from,
    kept in case a cluster empties) is checkpoint state: a resumed clustering stage continues
    from it.
    """

    def __init__(self, estimator: RecurrentClusterer, network, pooled: Sequences, device):
        self.estimator = estimator
        self.network = network
        self.pooled = pooled
        self.device = device
        self.labels = None
        self.target = None

    def _refresh(self) -> np.ndarray:
        q = self.estimator._soft(self.network, self.pooled)
        self.network.train()
        self.target = target_distribution(torch.from_numpy(q).double()).float().to(self.device)
        return q.argmax(1)

    def state_dict(self) -> dict:
        return {"target": self.target, "labels": torch.from_numpy(self.labels),
                "n_start": self.n_start, **{f"start.{k}": v for k, v in self.start.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.target = state["target"].to(self.device)
        self.labels = state["labels"].numpy()
        self.n_start = int(state["n_start"])
        self.start = {k[len("start."):]: v.to(self.device) for k, v in state.items()
                      if k.startswith("start.")}

    def on_train_begin(self, state) -> None:
        self.labels = self._refresh()
        self.n_start = len(np.unique(self.labels))
        self.start = copy_weights(self.network)

    def on_epoch_end(self, state, record: dict) -> None:
        if record["epoch"] % self.estimator.update_interval:
            return
        labels = self._refresh()
        if len(np.unique(labels)) < self.n_start:
            # The clustering loss emptied a cluster (it can pull every code to one centre on
            # data with weak structure, or on small sets where each epoch is one full-batch
            # step): the stage failed. Return to the weights it started from, the pretrained
            # encoder and its k-means centres, and stop. (Keeping the last refresh's weights
            # instead kept partitions the stage had already wrecked: docs/clustering.md.)
            record["collapsed"] = True
            state.best_weights = self.start  # the loop loads these when it returns
            state.stop = True
            return
        change = float(np.mean(labels != self.labels))
        record["label_change"] = change
        self.labels = labels
        if change < self.estimator.tol:
            state.stop = True
