"""A generic multi-phase loop for objectives that take several optimiser steps per batch.

Adversarial training (a generator and a discriminator updated in turn) and staged training
(pretraining phases before a joint one) do not fit ``train``'s one-loss-one-optimiser loop. Here each
phase is a name, a number of iterations and a step function ``step(values, lengths, index) ->
{loss name: float}`` that does its own forward passes and optimiser updates; the loop draws the
batches, checks for divergence, averages the losses into history records and calls the usual
callbacks (progress bar, checkpoints). Like ``train`` it knows nothing of GANs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..data import Sequences
from .loop import TrainingConfig, TrainingDiverged, TrainingState, iter_batches

__all__ = ["Phase", "train_phases"]

StepFn = Callable[[torch.Tensor, torch.Tensor, np.ndarray], dict]


@dataclass
class Phase:
    """One stage of training: ``iterations`` calls of ``step`` on fresh batches."""

    name: str
    iterations: int
    step: StepFn


def _batches(seqs: Sequences, batch_size: int, rng: np.random.Generator):
    """Endless shuffled, length-bucketed batches: a new pass over the data when one runs out."""
    while True:
        yield from iter_batches(seqs, batch_size, rng)


def train_phases(
    module: nn.Module,
    phases: Sequence[Phase],
    seqs: Sequences,
    *,
    batch_size: int,
    rng: np.random.Generator,
    device: torch.device | str = "cpu",
    callbacks: Sequence = (),
    log_every: int = 100,
) -> list[dict]:
    """Run ``phases`` in order and return the history.

    Every ``log_every`` iterations of a phase (and at its end) one record is appended:
    ``{"epoch": k, "phase": name, "iteration": i, "train_loss": ..., <each loss>: ..., "seconds": ...}``
    with losses averaged over those iterations; ``train_loss`` is the step's first loss. Callbacks see
    each record as an epoch end (``state.config.epochs`` is the number of records). A NaN or infinite
    loss raises :class:`TrainingDiverged` naming the phase and iteration.
    """
    module.to(device)
    module.train()
    values, lengths = seqs.tensors(device)
    n_records = sum(math.ceil(p.iterations / log_every) for p in phases if p.iterations > 0)
    config = TrainingConfig(epochs=max(1, n_records), batch_size=batch_size,
                            validation_fraction=0.0, patience=None)
    state = TrainingState(module, None, config)
    batches = _batches(seqs, batch_size, rng)
    for cb in callbacks:
        cb.on_train_begin(state)
    for phase in phases:
        totals: dict[str, float] = {}
        count, started = 0, time.perf_counter()
        for iteration in range(1, phase.iterations + 1):
            index = next(batches)
            longest = int(seqs.lengths[index].max())
            idx = torch.from_numpy(index).to(device)
            losses = phase.step(values[idx, :longest], lengths[idx], index)
            for name, value in losses.items():
                value = float(value)
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"Training diverged: {name} became {value} in phase {phase.name!r}, "
                        f"iteration {iteration}. Lower learning_rate or set max_grad_norm, and check "
                        "that the data is scaled."
                    )
                totals[name] = totals.get(name, 0.0) + value
            count += 1
            if count == log_every or iteration == phase.iterations:
                means = {name: total / count for name, total in totals.items()}
                state.epoch += 1
                record = {"epoch": state.epoch, "phase": phase.name, "iteration": iteration,
                          "train_loss": next(iter(means.values())), **means,
                          "seconds": time.perf_counter() - started}
                state.history.append(record)
                for cb in callbacks:
                    cb.on_epoch_end(state, record)
                totals, count, started = {}, 0, time.perf_counter()
                if state.stop:
                    break
        if state.stop:
            break
    for cb in callbacks:
        cb.on_train_end(state)
    module.eval()
    return state.history
