"""What a training run holds: its settings, its state, its batch stream and its optimisers.

Everything here is saved by a checkpoint and restored on resume (see ``callbacks.Checkpoint``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..data import Sequences
from . import distributed

__all__ = ["BatchStream", "Counters", "OptimizerSet", "TrainingConfig", "TrainingState",
           "apply_update", "copy_weights", "iter_batches"]

# Batches are drawn from pools of this many batches sorted by length, so that a batch holds
# sequences of similar length (little padding) while batch composition still varies per epoch.
BUCKET_POOL = 20


@dataclass
class TrainingConfig:
    """Settings of a single-objective fit (see :func:`ursa.training.train`)."""

    epochs: int = 50
    batch_size: int = 64
    learning_rate: float = 1e-3
    max_grad_norm: float | None = 1.0  # clipping on by default: recurrent nets explode without it
    validation_fraction: float = 0.1
    patience: int | None = 10
    weight_decay: float = 0.0
    # Cap on optimiser steps, applied as whole epochs: epochs = min(epochs, ceil(max_steps /
    # batches per epoch)), so large data sets train for fewer epochs.
    max_steps: int | None = None
    # Linear learning-rate warm-up: epoch e (from 1) steps at learning_rate * min(1, e / warmup_epochs).
    # A fresh Adam moves every weight by about the learning rate on its first steps, whatever the
    # gradient; warming up keeps a stage that starts from trained weights from being knocked off them.
    warmup_epochs: int = 0
    # "bfloat16": the forward pass (and the loss) under bfloat16 autocast; weights, gradients
    # and optimiser state stay float32 (see ursa.training.precision).
    precision: str = "float32"


@dataclass
class TrainingState:
    """Everything a run needs to continue: what callbacks see, and what a checkpoint saves.

    ``epoch`` counts the history records written so far (an epoch of a pass-based phase, or
    ``log_every`` iterations of an iteration-based one). ``best_weights`` is set when early
    stopping is active. A callback may restore all of it in ``on_train_begin`` (resuming) and set
    ``finished`` when the restored run had already ended. ``config.epochs`` is the number of
    records the run will write.
    """

    module: nn.Module
    optimizer: object  # torch Optimizer or OptimizerSet: state_dict() / load_state_dict()
    config: TrainingConfig
    rng: np.random.Generator | None = None
    history: list = field(default_factory=list)
    epoch: int = 0
    best_loss: float = math.inf
    since_best: int = 0
    best_weights: dict | None = None
    stop: bool = False  # a callback sets this to end training after the current record
    finished: bool = False  # stopped early (early stopping or a callback): a resumed run does nothing
    # Further state a run needs to continue, saved by a checkpoint beside the module and the
    # optimisers: name -> object with state_dict() / load_state_dict(), the state dict flat
    # ({key: tensor or JSON value}): the batch stream's position, a weight average, a step's
    # counters, a clustering target.
    stateful: dict = field(default_factory=dict)


def iter_batches(
    seqs: Sequences,
    batch_size: int,
    rng: np.random.Generator | None = None,
) -> Iterator[np.ndarray]:
    """Yield index arrays. With ``rng``: shuffled, bucketed by length; without: in order."""
    n = seqs.n_sequences
    if rng is None:
        for start in range(0, n, batch_size):
            yield np.arange(start, min(start + batch_size, n))
        return
    order = rng.permutation(n)
    if seqs.equal_length:
        batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    else:
        batches = []
        pool = batch_size * BUCKET_POOL
        for start in range(0, n, pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(seqs.lengths[chunk], kind="stable")]
            batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
        batches = [batches[i] for i in rng.permutation(len(batches))]
    yield from batches


class BatchStream:
    """Shuffled, length-bucketed batches (or Poisson-sampled ones, see :meth:`new_pass`): a new
    pass over the data when one runs out.

    Its state (the batches left in the current pass) goes into checkpoints, so that a resumed run
    draws the same batches as an uninterrupted one, even when a checkpoint falls mid-pass.
    """

    def __init__(self, seqs: Sequences, batch_size: int, rng: np.random.Generator,
                 sample_rate: float | None = None):
        self.seqs, self.batch_size, self.rng = seqs, batch_size, rng
        self.sample_rate = sample_rate
        self.pending: deque = deque()

    def __next__(self) -> np.ndarray:
        if not self.pending:
            self.new_pass()
        return self.pending.popleft()

    def new_pass(self) -> int:
        """Queue a fresh pass over the data (after what is pending); return its batch count.

        With ``sample_rate`` (private training), a pass is ``round(1 / sample_rate)`` batches,
        each holding every sequence independently with that probability (Poisson sampling, what
        the privacy accounting assumes): batch sizes vary, and a batch may be empty."""
        if self.sample_rate is not None:
            n, rate = self.seqs.n_sequences, self.sample_rate
            batches = [np.flatnonzero(self.rng.random(n) < rate)
                       for _ in range(self.poisson_pass(rate))]
        else:
            batches = list(iter_batches(self.seqs, self.batch_size, self.rng))
        self.pending.extend(batches)
        return len(batches)

    @staticmethod
    def poisson_pass(sample_rate: float) -> int:
        """Batches in a pass of Poisson sampling at ``sample_rate``."""
        return max(1, round(1 / sample_rate))

    def state_dict(self) -> dict:
        sizes = [len(b) for b in self.pending]
        flat = np.concatenate(list(self.pending)) if sizes else np.zeros(0, dtype=np.int64)
        return {"indices": torch.from_numpy(flat.astype(np.int64)), "sizes": sizes}

    def load_state_dict(self, state: dict) -> None:
        flat = state["indices"].numpy()
        bounds = np.cumsum([0, *state["sizes"]])
        if bounds[-1] != len(flat) or (len(flat) and flat.max() >= self.seqs.n_sequences):
            raise ValueError("the saved batch positions do not fit this data")
        self.pending = deque(flat[a:b] for a, b in zip(bounds[:-1], bounds[1:]))


class OptimizerSet:
    """Several optimisers seen as one by a checkpoint.

    ``state_dict`` concatenates theirs in order (parameter ids offset so that they stay unique, as
    if one optimiser held every parameter group) and ``load_state_dict`` splits such a dict back.
    """

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]):
        self.optimizers = list(optimizers)

    @property
    def param_groups(self) -> list:
        return [group for opt in self.optimizers for group in opt.param_groups]

    def state_dict(self) -> dict:
        state, groups, offset = {}, [], 0
        for opt in self.optimizers:
            own = opt.state_dict()
            state.update({offset + pid: slots for pid, slots in own["state"].items()})
            groups.extend({**g, "params": [offset + p for p in g["params"]]}
                          for g in own["param_groups"])
            offset += sum(len(g["params"]) for g in own["param_groups"])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        groups = list(state_dict["param_groups"])
        if len(groups) != len(self.param_groups):
            raise ValueError(f"the saved state has {len(groups)} parameter groups, these optimisers "
                             f"{len(self.param_groups)}")
        offset = 0
        for opt in self.optimizers:
            own, groups = groups[:len(opt.param_groups)], groups[len(opt.param_groups):]
            size = sum(len(g["params"]) for g in own)
            opt.load_state_dict({
                "state": {pid - offset: slots for pid, slots in state_dict["state"].items()
                          if offset <= pid < offset + size},
                "param_groups": [{**g, "params": [p - offset for p in g["params"]]} for g in own],
            })
            offset += size


class Counters(dict):
    """Numbers a step keeps between calls (JSON values), saved with checkpoints."""

    def state_dict(self) -> dict:
        return dict(self)

    def load_state_dict(self, state: dict) -> None:
        self.clear()
        self.update(state)


def apply_update(optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor], *,
                 loss: torch.Tensor | None = None, grads: Sequence | None = None,
                 max_grad_norm: float | None = None, report: dict | None = None) -> dict | None:
    """One optimiser step on ``params``, from ``loss`` (backpropagated here) or from gradients
    already taken (``grads``, one per parameter, None where unused), clipped to ``max_grad_norm``
    when set. The one place updates are clipped, and, in a fit across processes, where gradients
    are combined over the processes (:func:`ursa.training.distributed.average_gradients`).
    ``report`` (a step's losses) then travels with them: the losses averaged over the
    processes are returned (None without ``report``)."""
    if loss is not None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
    else:
        for p, g in zip(params, grads):
            p.grad = g
    averaged = distributed.average_gradients(params, report)
    if max_grad_norm is not None:
        nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    return averaged


def copy_weights(module: nn.Module) -> dict:
    """A detached copy of ``module``'s state dict (weights to restore later)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
