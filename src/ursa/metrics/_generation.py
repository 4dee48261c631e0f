"""Generation metrics: the TimeGAN protocol's discriminative and predictive scores, and a 2-D view of
real against synthetic sequences.

Protocol (Yoon et al., NeurIPS 2019), for data scaled to [0, 1]:

- discriminative score: a post-hoc 1-layer GRU classifier (hidden = n_features // 2) reads each
  sequence and outputs real/synthetic from its last state; trained with Adam on 80 % of the real and
  80 % of the synthetic sequences (2000 steps, a batch of 128 of each per step), scored on the rest:
  ``|accuracy - 0.5|`` (0 = indistinguishable).
- predictive score (train on synthetic, test on real): a 1-layer GRU (hidden = n_features // 2)
  with a sigmoid readout predicts the last feature one step ahead from the other features, trained
  on synthetic data only (5000 steps, batch 128, absolute error), scored as the mean absolute error
  per real sequence, averaged over all real sequences. With one feature it predicts the feature's
  next value from its past.

Each score is repeated ``n_repeats`` times (10 in the protocol) with fresh networks and splits.
Both run on the CPU unless given a ``device``; on a GPU a repeat draws the same batches but its
floats round differently, so its score is not the CPU's to the last digit.
"""

from __future__ import annotations

import sys
from collections import namedtuple

import numpy as np
import torch
import torch.nn.functional as F

from .._params import check_count, seeds
from ..data import Sequences, as_sequences
from ..networks.gan import RecurrentBlock
from ..networks.recurrent import last_valid
from ..persistence import check_device_here
from ..training import intra_op_threads

__all__ = [
    "GenerationScore",
    "context_fid",
    "discriminative_score",
    "diversity_ratio",
    "predictive_score",
    "real_vs_synthetic_embedding",
]

GenerationScore = namedtuple("GenerationScore", ["mean", "std", "scores"])
GenerationScore.__doc__ = """Mean and standard deviation over repeats, and each repeat's score."""


def _check_pair(real, synthetic) -> tuple[Sequences, Sequences]:
    real_seqs = as_sequences(real, name="real")
    synthetic_seqs = as_sequences(synthetic, name="synthetic")
    if real_seqs.n_features != synthetic_seqs.n_features:
        raise ValueError(
            f"real has {real_seqs.n_features} features but synthetic has "
            f"{synthetic_seqs.n_features}; pass sequences with the same features."
        )
    return real_seqs, synthetic_seqs


def _device(device, where: str) -> torch.device:
    """The torch device a metric runs on: None is the CPU, "auto" a GPU when there is one."""
    return torch.device("cpu") if device is None else check_device_here(device, where)


def _repeat(fn, seeds, steps: int, verbose, description: str):
    """``fn(rng, tick)`` once per seed, each from its own seed; ``tick()`` after each of its
    ``steps`` training steps advances a progress bar (shown when ``verbose`` and the score has
    run two seconds)."""
    from tqdm.auto import tqdm

    scores = []
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    # The post-hoc networks are a few units wide: a second intra-op thread only burns CPU (and
    # fights other processes on a busy machine), so they train on one.
    with intra_op_threads(1), tqdm(total=len(seeds) * steps, desc=description, unit="step",
                                   leave=False, delay=2.0, disable=not verbose,
                                   file=sys.stderr, miniters=50) as bar:
        for seed in seeds:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                scores.append(float(fn(np.random.default_rng(seed), bar.update)))
    scores = np.asarray(scores)
    return GenerationScore(float(scores.mean()), float(scores.std()), scores)


def diversity_ratio(real, synthetic) -> float:
    """Mean pairwise Euclidean distance between synthetic sequences over that between real ones.

    ``real`` and ``synthetic`` are arrays of shape (n, n_timesteps[, n_features]) compared as
    flat vectors. Near 0 means the synthetic sequences crowd together (mode collapse); 1 means
    they spread like the data. 1.0 when the real sequences are all equal.
    """
    real, synthetic = np.asarray(real), np.asarray(synthetic)

    def spread(a):
        a = a.reshape(len(a), -1)
        d = np.sqrt(np.maximum(((a[:, None, :] - a[None, :, :]) ** 2).sum(-1), 0.0))
        return d.sum() / max(1, len(a) * (len(a) - 1))

    real_spread = spread(real)
    return float(spread(synthetic) / real_spread) if real_spread > 0 else 1.0


def discriminative_score(real, synthetic, n_repeats: int = 10, iterations: int = 2000,
                         batch_size: int = 128, random_state=None,
                         device=None, hidden_size=None, verbose=True) -> GenerationScore:
    """TimeGAN's discriminative score: ``|accuracy - 0.5|`` of a post-hoc GRU classifier.

    Parameters
    ----------
    real, synthetic : arrays of shape (n, n_timesteps, n_features), NaN-padded arrays or lists of
        (T_i, n_features) arrays, both scaled to [0, 1] as in the protocol
    n_repeats : int, default=10
    iterations : int, default=2000
        Adam steps per repeat (the protocol's 2000).
    batch_size : int, default=128
        Real and synthetic sequences per step, each (the protocol's 128).
    random_state : int, RandomState or None
    device : None, "auto", "cpu", "cuda", "cuda:N" or torch.device, default=None
        Where the post-hoc network trains; None is the CPU, "auto" a GPU when there is one.
    hidden_size : int or None, default=None
        Width of the post-hoc GRU. None is the protocol's ``n_features // 2`` (at least 1), the
        setting every published score uses. That classifier is weak (two units for Sines' five features): it
        can miss differences that a 32-unit one finds easily (docs/generation.md). A wider
        classifier is a stricter test, and a steadier one between repeats; its scores are not
        comparable with published ones.
    verbose : bool, default=True
        Show a progress bar with the time left on standard error once scoring has run two
        seconds (the protocol's sizes take minutes on a CPU).

    Returns
    -------
    GenerationScore(mean, std, scores); lower is better, 0.5 means perfectly separable.
    """
    real_seqs, synthetic_seqs = _check_pair(real, synthetic)
    n_repeats = check_count(n_repeats, "n_repeats")
    iterations = check_count(iterations, "iterations")
    batch_size = check_count(batch_size, "batch_size")
    if hidden_size is not None:
        hidden_size = check_count(hidden_size, "hidden_size")
    for name, seqs in (("real", real_seqs), ("synthetic", synthetic_seqs)):
        if len(seqs) < 2:
            raise ValueError(f"{name} needs at least 2 sequences for the 80/20 split, got {len(seqs)}.")
    device = _device(device, "discriminative_score")
    n_features = real_seqs.n_features
    width = max(1, n_features // 2) if hidden_size is None else hidden_size
    steps = max(real_seqs.max_length, synthetic_seqs.max_length)

    def tensors(seqs):
        values = np.zeros((len(seqs), steps, n_features), np.float32)
        values[:, : seqs.max_length] = seqs.values
        return torch.from_numpy(values).to(device), torch.from_numpy(seqs.lengths).to(device)

    real_x, real_n = tensors(real_seqs)
    fake_x, fake_n = tensors(synthetic_seqs)

    def split(n, rng):
        order = rng.permutation(n)
        cut = int(n * 0.8)
        return order[:cut], order[cut:]

    def once(rng, tick):
        model = RecurrentBlock(n_features, 1, width, 1, "gru", sigmoid=False).to(device)
        optimizer = torch.optim.Adam(model.parameters())
        real_train, real_test = split(len(real_x), rng)
        fake_train, fake_test = split(len(fake_x), rng)
        for _ in range(iterations):
            r = real_train[rng.integers(0, len(real_train), size=min(batch_size, len(real_train)))]
            f = fake_train[rng.integers(0, len(fake_train), size=min(batch_size, len(fake_train)))]
            x = torch.cat([real_x[r], fake_x[f]])
            n = torch.cat([real_n[r], fake_n[f]])
            logits = last_valid(model(x), n).squeeze(-1)
            target = torch.cat([torch.ones(len(r), device=device),
                                torch.zeros(len(f), device=device)])
            loss = F.binary_cross_entropy_with_logits(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            tick()
        with torch.no_grad():
            x = torch.cat([real_x[real_test], fake_x[fake_test]])
            n = torch.cat([real_n[real_test], fake_n[fake_test]])
            predicted = last_valid(model(x), n).squeeze(-1) > 0  # probability > 0.5
            target = torch.cat([torch.ones(len(real_test), device=device),
                                torch.zeros(len(fake_test), device=device)]).bool()
            accuracy = (predicted == target).float().mean().item()
        return abs(accuracy - 0.5)

    return _repeat(once, seeds(random_state, n_repeats), iterations, verbose,
                   "discriminative score")


def predictive_score(real, synthetic, n_repeats: int = 10, iterations: int = 5000,
                     batch_size: int = 128, random_state=None, device=None,
                     verbose=True) -> GenerationScore:
    """TimeGAN's predictive score (train on synthetic, test on real): one-step-ahead MAE.

    Parameters
    ----------
    real, synthetic : arrays of shape (n, n_timesteps, n_features), NaN-padded arrays or lists of
        (T_i, n_features) arrays, scaled to [0, 1] as in the protocol; every sequence needs at
        least 2 steps
    n_repeats : int, default=10
    iterations : int, default=5000
        Adam steps per repeat (the protocol's 5000).
    batch_size : int, default=128
    random_state : int, RandomState or None
    device : None, "auto", "cpu", "cuda", "cuda:N" or torch.device, default=None
        Where the post-hoc network trains; None is the CPU, "auto" a GPU when there is one.
    verbose : bool, default=True
        Show a progress bar with the time left on standard error once scoring has run two
        seconds (the protocol's sizes take minutes on a CPU).

    Returns
    -------
    GenerationScore(mean, std, scores); lower is better.
    """
    real_seqs, synthetic_seqs = _check_pair(real, synthetic)
    n_repeats = check_count(n_repeats, "n_repeats")
    iterations = check_count(iterations, "iterations")
    batch_size = check_count(batch_size, "batch_size")
    for name, seqs in (("real", real_seqs), ("synthetic", synthetic_seqs)):
        short = np.flatnonzero(seqs.lengths < 2)
        if len(short):
            raise ValueError(f"{name}[{short[0]}] has {seqs.lengths[short[0]]} step; the predictive "
                             "score needs at least 2 steps per sequence.")
    device = _device(device, "predictive_score")
    n_features = real_seqs.n_features
    inputs = slice(0, n_features - 1) if n_features > 1 else slice(0, 1)

    def tensors(seqs):
        values = torch.from_numpy(seqs.values)
        x = values[:, :-1, inputs]  # (n, T-1, inputs)
        y = values[:, 1:, n_features - 1]  # (n, T-1) the last feature one step ahead
        n_valid = torch.from_numpy(seqs.lengths - 1)
        mask = (torch.arange(x.size(1))[None, :] < n_valid[:, None]).float()
        return x.to(device), y.to(device), mask.to(device)

    fake_x, fake_y, fake_mask = tensors(synthetic_seqs)
    real_x, real_y, real_mask = tensors(real_seqs)
    n_inputs = fake_x.size(2)

    def once(rng, tick):
        model = RecurrentBlock(n_inputs, 1, max(1, n_features // 2), 1, "gru", sigmoid=False).to(device)
        optimizer = torch.optim.Adam(model.parameters())
        for _ in range(iterations):
            b = rng.integers(0, len(fake_x), size=min(batch_size, len(fake_x)))
            predicted = torch.sigmoid(model(fake_x[b])).squeeze(-1)
            error = (predicted - fake_y[b]).abs() * fake_mask[b]
            loss = error.sum() / fake_mask[b].sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            tick()
        with torch.no_grad():
            predicted = torch.sigmoid(model(real_x)).squeeze(-1)
            per_sequence = ((predicted - real_y).abs() * real_mask).sum(1) / real_mask.sum(1)
            return per_sequence.mean().item()

    return _repeat(once, seeds(random_state, n_repeats), iterations, verbose,
                   "predictive score")


def _frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and of ``b``."""
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    # tr sqrt(cov_a cov_b) = tr sqrt(root_a cov_b root_a), a symmetric matrix.
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0.0, None)).sum()
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def context_fid(real, synthetic, n_repeats: int = 3, encoder=None, epochs: int = 20,
                random_state=None, device=None, verbose=True) -> GenerationScore:
    """Fréchet distance between real and synthetic sequences' embeddings (a context-FID).

    As context-FID (Jeha et al., ICLR 2022) with a recurrent encoder: an encoder trained on the
    real sequences embeds both sets, a Gaussian is fitted to each set of embeddings, and the
    score is the Fréchet distance between them (0: the same mean and covariance). Unlike the
    discriminative score it does not saturate at a weak classifier's limit, so it tells
    generators apart where that score cannot; its scale depends on the encoder, so compare
    figures from the same encoder settings only, against real data scored the same way.

    Parameters
    ----------
    real, synthetic : arrays of shape (n, n_timesteps[, n_features]), NaN-padded arrays or lists
        of (T_i, n_features) arrays
    n_repeats : int, default=3
        Encoders trained (each from its own seed), one score each.
    encoder : fitted estimator with ``transform`` or None, default=None
        Embeds both sets (then there is one score, whatever ``n_repeats``). None trains a
        :class:`ursa.SequenceAutoencoder` (GRU of 64 units, 16-value code) on ``real`` per repeat.
    epochs : int, default=20
        Training epochs of each encoder trained here (with early stopping on a held-out tenth).
    random_state : int, RandomState or None
    device : None, "auto", "cpu", "cuda", "cuda:N" or torch.device, default=None
        Where the encoders train; None is the CPU.
    verbose : bool, default=True
        Show the encoders' progress bars.

    Returns
    -------
    GenerationScore
        Mean and standard deviation over the repeats, and each repeat's distance.
    """
    real_seqs, synthetic_seqs = _check_pair(real, synthetic)
    n_repeats = check_count(n_repeats, "n_repeats")
    epochs = check_count(epochs, "epochs")
    if len(real_seqs) < 2 or len(synthetic_seqs) < 2:
        raise ValueError("context_fid needs at least 2 real and 2 synthetic sequences to fit "
                         f"each Gaussian, got {len(real_seqs)} and {len(synthetic_seqs)}.")
    if encoder is not None and not hasattr(encoder, "transform"):
        raise TypeError(f"encoder must be a fitted estimator with transform(X) (e.g. a "
                        f"SequenceAutoencoder), got {type(encoder).__name__}")
    from ..estimators.autoencoder import SequenceAutoencoder

    device = "cpu" if device is None else device
    scores = []
    for seed in seeds(random_state, 1 if encoder is not None else n_repeats):
        model = encoder
        if model is None:
            model = SequenceAutoencoder(epochs=epochs, batch_size=128, random_state=seed,
                                        device=device, verbose=verbose).fit(real_seqs)
        scores.append(_frechet(np.asarray(model.transform(real_seqs), dtype=np.float64),
                               np.asarray(model.transform(synthetic_seqs), dtype=np.float64)))
    scores = np.asarray(scores)
    return GenerationScore(float(scores.mean()), float(scores.std()), scores)


def real_vs_synthetic_embedding(real, synthetic, method: str = "pca", random_state=None,
                                max_samples: int = 1000):
    """2-D embedding of real and synthetic sequences (TimeGAN's visual check).

    As in the TimeGAN reference, up to ``max_samples`` sequences of each are drawn, each sequence is
    reduced to its mean over features at every step, and the (n, n_timesteps) rows are embedded:
    ``"pca"`` fits a 2-component PCA on the real rows and projects both; ``"tsne"`` runs t-SNE on
    both together.

    Parameters
    ----------
    real, synthetic : arrays of shape (n, n_timesteps[, n_features]) with the same n_timesteps
        (equal-length sequences; crop variable-length data to a common length first)
    method : {"pca", "tsne"}, default="pca"
    random_state : int or None
    max_samples : int, default=1000

    Returns
    -------
    real_2d : ndarray of shape (n_real_used, 2)
    synthetic_2d : ndarray of shape (n_synthetic_used, 2)
    """
    if method not in ("pca", "tsne"):
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}.")
    max_samples = check_count(max_samples, "max_samples")
    real_seqs, synthetic_seqs = _check_pair(real, synthetic)
    for name, seqs in (("real", real_seqs), ("synthetic", synthetic_seqs)):
        if not seqs.equal_length:
            raise ValueError(f"{name} has sequences of different lengths; crop them to a common "
                             "length before embedding.")
    if real_seqs.max_length != synthetic_seqs.max_length:
        raise ValueError(f"real has {real_seqs.max_length} steps but synthetic has "
                         f"{synthetic_seqs.max_length}; pass sequences of the same length.")
    rng = np.random.default_rng(random_state)

    def rows(seqs):
        pick = np.sort(rng.permutation(len(seqs))[:max_samples])
        return seqs.values[pick].mean(axis=2).astype(np.float64)  # (n, T)

    real_rows, synthetic_rows = rows(real_seqs), rows(synthetic_seqs)
    if method == "pca":
        from sklearn.decomposition import PCA

        n_components = min(2, real_rows.shape[1], len(real_rows))
        pca = PCA(n_components=n_components).fit(real_rows)
        out = [pca.transform(real_rows), pca.transform(synthetic_rows)]
        if n_components < 2:  # a 1-step sequence has one coordinate: pad the second with zeros
            out = [np.pad(o, [(0, 0), (0, 2 - n_components)]) for o in out]
        return out[0], out[1]
    from sklearn.manifold import TSNE

    both = np.concatenate([real_rows, synthetic_rows])
    perplexity = float(min(40, max(1, (len(both) - 1) // 3)))
    seed = None if random_state is None else int(rng.integers(2**31 - 1))
    embedded = TSNE(n_components=2, perplexity=perplexity, init="pca",
                    random_state=seed).fit_transform(both)
    return embedded[: len(real_rows)], embedded[len(real_rows):]
