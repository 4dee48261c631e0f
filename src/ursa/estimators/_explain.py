"""Explanations, one mechanism for every estimator: which steps and channels of a sequence drove
the score a model gives it.

An estimator that mixes in :class:`ExplainMixin` says what it explains (``_explained``: a
differentiable score per sequence, on scaled data) and, when its encoder has attention, where to
find the weights (``_attention``); the mixin provides ``explain(X, method)`` with the methods
below, batching, missing values and the caller's layout. The detector, whose score is a sum of
reconstruction errors, returns the same :class:`Explanation` with its window details.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data import Sequences, batch_rows, restore_layout

__all__ = ["Explanation", "ExplainMixin", "integrated_gradients", "occlusion"]

# Integrated gradients: points of the midpoint rule along the path from the baseline. The
# attributions of a sequence sum to its score minus the baseline's up to this rule's error.
IG_STEPS = 32
# Occlusion blanks windows of ceil(length / OCCLUSION_WINDOWS) steps, one channel at a time.
OCCLUSION_WINDOWS = 32
# Sequences per batch of an explanation (integrated gradients runs IG_STEPS passes on each).
EXPLAIN_BATCH = 64


@dataclass
class Explanation:
    """What drove a model's scores.

    Attributes
    ----------
    attributions : ndarray or list of ndarray
        Each step's and channel's contribution to ``scores``, laid out like the input (an array
        of shape (n_sequences, n_timesteps[, n_features]) with NaN after each sequence's end, or
        a list of (T_i[, n_features]) arrays; (T, n_features) for a detector's one series).
        Positive values raise the score.
    scores : ndarray
        What is explained: one value per sequence (the reconstruction error, the log
        probability of the assigned cluster), or per step for a detector.
    method : str
        How the attributions were computed: ``"error"`` (the score is a sum of squared
        reconstruction errors and each step and channel gets its own term, exactly),
        ``"integrated-gradients"`` (Sundararajan et al. 2017: the path integral of the gradient
        from the baseline, the scaled zero, i.e. each channel's training mean under standard
        scaling; attributions sum to the score minus the baseline's score),
        ``"occlusion"`` (the drop in the score when a window of steps of one channel is set to
        the baseline, spread over the window), or ``"attention"`` (the encoder's attention
        weights spread over the input steps each recurrent step reads and evenly over the
        channels: where the model looked, summing to 1 (less the share of missing values), not
        a decomposition of the score).
    target : ndarray or None
        The cluster each sequence's explanation is about (the clusterer), else None.
    """

    attributions: object
    scores: np.ndarray
    method: str
    target: np.ndarray | None


def integrated_gradients(score, values: torch.Tensor, lengths: torch.Tensor,
                         steps: int = IG_STEPS) -> torch.Tensor:
    """Integrated gradients of ``score(values, lengths) -> (batch,)`` from the zero baseline:
    (x - 0) times the mean gradient at ``steps`` midpoints of the straight path. NaN inputs
    (missing values) stay NaN on the path and get 0. (batch, time, C) -> (batch, time, C)."""
    missing = torch.isnan(values)
    filled = torch.where(missing, torch.zeros((), dtype=values.dtype, device=values.device),
                         values)
    nan = torch.full((), float("nan"), dtype=values.dtype, device=values.device)
    total = torch.zeros_like(filled)
    for alpha in (np.arange(steps) + 0.5) / steps:
        point = (filled * float(alpha)).requires_grad_(True)
        out = score(torch.where(missing, nan, point), lengths)
        (grad,) = torch.autograd.grad(out.sum(), point)
        total += grad
    return filled * total / steps


def occlusion(score, values: torch.Tensor, lengths: torch.Tensor,
              windows: int = OCCLUSION_WINDOWS, reference: torch.Tensor | None = None
              ) -> torch.Tensor:
    """The drop in ``score`` when each window of ceil(T / ``windows``) steps of each channel is
    set to the zero baseline, divided evenly over the window's steps. (batch, time, C) ->
    (batch, time, C), zero after each end. ``reference`` is ``score(values, lengths)`` when
    the caller has it already."""
    batch, n_steps, n_channels = values.shape
    width = -(-n_steps // windows)
    if reference is None:
        reference = score(values, lengths)
    out = torch.zeros_like(values)
    for start in range(0, n_steps, width):
        stop = min(start + width, n_steps)
        for channel in range(n_channels):
            blanked = values.clone()
            blanked[:, start:stop, channel] = 0.0
            drop = reference - score(blanked, lengths)  # (batch,)
            inside = (lengths - start).clamp(0, stop - start).to(values.dtype)  # valid steps
            out[:, start:stop, channel] = (drop / inside.clamp_min(1.0))[:, None]
    valid = torch.arange(n_steps, device=values.device)[None, :] < lengths[:, None]
    return out * valid.unsqueeze(-1).to(values.dtype)


class ExplainMixin:
    """``explain(X, method)`` for an estimator that scores sequences with a network.

    The estimator implements ``_explained(network, values, lengths, target=None) -> (scores
    (batch,), target (batch,) or None)`` on scaled values (differentiable in them; ``target``
    fixes what is explained, e.g. the cluster, as the first call found it), and may implement
    ``_attention(network, values, lengths) -> (weights (batch, time'), span)`` (each weight
    covers ``span`` input steps) and ``_error_terms(network, values, lengths) -> (batch, time,
    C)`` (a score that is a sum of terms, one per step and channel). ``_auto_method`` names
    what ``method="auto"`` uses.
    """

    def _encoder_kind(self) -> str:
        """The fitted encoder's kind (``encoder_`` where "auto" is resolved at fit)."""
        return getattr(self, "encoder_", getattr(self, "encoder", "rnn"))

    def _explain_methods(self) -> tuple[str, ...]:
        # Token ids have no path from a baseline to follow: no integrated gradients for them.
        methods = ["occlusion"] if getattr(self, "_tokens", False) else \
            ["integrated-gradients", "occlusion"]
        if hasattr(self, "_error_terms"):
            methods.insert(0, "error")
        if self._encoder_kind().endswith("-attention"):
            methods.append("attention")
        return tuple(methods)

    def explain(self, X, method: str = "auto") -> Explanation:
        """Which steps and channels of each sequence drove its score.

        Parameters
        ----------
        X : array of shape (n_sequences, n_timesteps[, n_features]), NaN-padded array, or list
            of arrays of shape (T_i[, n_features])
        method : {"auto", "error", "integrated-gradients", "occlusion", "attention"}
            How to attribute (see :class:`Explanation`); "auto" picks this estimator's default.
            "error" needs a score made of reconstruction errors, "attention" an attention
            encoder; token sequences take every method but "integrated-gradients" (occlusion
            replaces tokens by padding).

        Returns
        -------
        Explanation
        """
        seqs = self._validate_data(X, reset=False)
        methods = self._explain_methods()
        if method == "auto":
            method = self._auto_method()
        if method not in methods:
            raise ValueError(f"method must be 'auto' or one of {methods} for this "
                             f"{type(self).__name__} (encoder {self._encoder_kind()!r}), got "
                             f"{method!r}.")
        network = self.network_
        device = next(network.parameters()).device
        offset = torch.from_numpy(self.scaler_.offset_).to(device)
        scale = torch.from_numpy(self.scaler_.scale_).to(device)
        attributions = np.zeros(seqs.values.shape, dtype=np.float32)
        scores = np.zeros(len(seqs))
        targets = None
        network.eval()
        with self._threads(), torch.no_grad():
            for rows in batch_rows(len(seqs), EXPLAIN_BATCH):
                batch = Sequences(seqs.values[rows], seqs.lengths[rows])
                values, lengths = batch.tensors(device)
                values = (values - offset) / scale
                if method == "error":  # the score is the sum of its terms: one forward pass
                    part = self._error_terms(network, values, lengths)
                    out, target = part.sum((1, 2)), None
                else:
                    out, target = self._explained(network, values, lengths)
                    part = self._attribute(method, network, values, lengths, out, target)
                scores[rows] = out.double().cpu().numpy()
                if target is not None:
                    targets = np.zeros(len(seqs), dtype=np.int64) if targets is None else targets
                    targets[rows] = target.cpu().numpy()
                attributions[rows, : part.shape[1]] = part.cpu().numpy()
        return Explanation(attributions=restore_layout(X, attributions, seqs.lengths),
                           scores=scores, method=method, target=targets)

    def _attribute(self, method, network, values, lengths, reference, target) -> torch.Tensor:
        """Attributions by ``method`` (not "error") of the scores ``reference`` of ``values``."""
        def score(v, n):
            return self._explained(network, v, n, target)[0]

        if method == "occlusion":
            out = occlusion(score, values, lengths, reference=reference)
        elif method == "attention":
            weights, span = self._attention(network, values, lengths)
            out = _spread(weights, span, lengths, values.shape)
        else:
            with torch.enable_grad():
                out = integrated_gradients(score, values, lengths)
        return out.masked_fill(torch.isnan(values), 0.0)  # a missing value contributes nothing


def _spread(weights: torch.Tensor, span: int, lengths: torch.Tensor, shape) -> torch.Tensor:
    """Per recurrent-step weights (batch, time') -> (batch, time, C): each input step gets its
    recurrent step's weight, shared evenly by the valid steps it covers and by the channels."""
    batch, n_steps, n_channels = shape
    steps = torch.arange(n_steps, device=weights.device)
    index = (steps // span).clamp_max(weights.size(1) - 1)
    per_step = weights[:, index]  # (batch, time)
    valid = (steps[None, :] < lengths[:, None]).to(weights.dtype)
    covered = torch.zeros_like(weights).index_add_(1, index, valid)
    per_step = per_step * valid / covered[:, index].clamp_min(1.0)
    return (per_step / n_channels).unsqueeze(-1).expand(batch, n_steps, n_channels)
