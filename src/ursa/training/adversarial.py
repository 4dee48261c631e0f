"""A generic multi-phase loop for objectives that take several optimiser steps per batch.

Adversarial training (a generator and a discriminator updated in turn) and staged training
(pretraining phases before a joint one) do not fit ``train``'s one-loss-one-optimiser loop. Here each
phase is a name, a number of iterations and a step function ``step(values, lengths, index) ->
{loss name: float}`` that does its own forward passes and optimiser updates; the loop draws the
batches, checks for divergence, averages the losses into history records and calls the usual
callbacks (progress bar, checkpoints). Like ``train`` it knows nothing of GANs.

Checkpoints are taken at history records, which fall mid-pass over the data and mid-phase, so the
loop registers its batch stream (the rest of the current pass) in the run's ``stateful`` state,
and step functions register whatever they keep between calls (``train_phases(stateful=...)``);
with the optimisers gathered in an :class:`OptimizerSet`, a resumed run continues exactly where
the checkpoint was taken.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from collections import deque
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..data import Sequences
from .loop import (
    TrainingConfig,
    TrainingDiverged,
    TrainingState,
    copy_weights,
    interruption,
    iter_batches,
)

__all__ = ["Counters", "OptimizerSet", "Phase", "train_phases"]

StepFn = Callable[[torch.Tensor, torch.Tensor, np.ndarray], dict]


@dataclass
class Phase:
    """One stage of training: ``iterations`` calls of ``step`` on fresh batches."""

    name: str
    iterations: int
    step: StepFn


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
    """Numbers a step function keeps between calls (JSON values), saved with checkpoints."""

    def state_dict(self) -> dict:
        return dict(self)

    def load_state_dict(self, state: dict) -> None:
        self.clear()
        self.update(state)


class _BatchStream:
    """Endless shuffled, length-bucketed batches: a new pass over the data when one runs out.

    Its state (the batches left in the current pass) goes into checkpoints, so that a resumed run
    draws the same batches as an uninterrupted one.
    """

    def __init__(self, seqs: Sequences, batch_size: int, rng: np.random.Generator):
        self.seqs, self.batch_size, self.rng = seqs, batch_size, rng
        self.pending: deque = deque()

    def __next__(self) -> np.ndarray:
        if not self.pending:
            self.pending.extend(iter_batches(self.seqs, self.batch_size, self.rng))
        return self.pending.popleft()

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


def _position(phases: Sequence[Phase], records_done: int, log_every: int) -> tuple[int, int]:
    """(phase number, iterations done in it) after ``records_done`` history records."""
    for number, phase in enumerate(phases):
        records = math.ceil(phase.iterations / log_every) if phase.iterations > 0 else 0
        if records_done < records:
            return number, records_done * log_every
        records_done -= records
    return len(phases), 0


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
    optimizer: OptimizerSet | torch.optim.Optimizer | None = None,
    stateful: Mapping[str, object] | None = None,
) -> list[dict]:
    """Run ``phases`` in order and return the history.

    Every ``log_every`` iterations of a phase (and at its end) one record is appended:
    ``{"epoch": k, "phase": name, "iteration": i, "train_loss": ..., <each loss>: ..., "seconds": ...}``
    with losses averaged over those iterations; ``train_loss`` is the step's first loss. Callbacks see
    each record as an epoch end (``state.config.epochs`` is the number of records). A NaN or infinite
    loss raises :class:`TrainingDiverged` naming the phase and iteration.

    For checkpoints, pass every optimiser the steps use as ``optimizer`` (an :class:`OptimizerSet`)
    and whatever the steps keep between calls as ``stateful`` (name -> object with ``state_dict`` /
    ``load_state_dict``). A checkpoint callback that restores a run in ``on_train_begin`` sets the
    number of records done; the loop continues from the phase and iteration that follow.
    Interrupted (Ctrl-C), it restores the weights of the last record and raises
    :class:`TrainingInterrupted` saying how to resume.
    """
    module.to(device)
    module.train()
    values, lengths = seqs.tensors(device)
    n_records = sum(math.ceil(p.iterations / log_every) for p in phases if p.iterations > 0)
    config = TrainingConfig(epochs=max(1, n_records), batch_size=batch_size,
                            validation_fraction=0.0, patience=None)
    batches = _BatchStream(seqs, batch_size, rng)
    state = TrainingState(module, optimizer, config, rng=rng)
    state.stateful = {"batches": batches, **(stateful or {})}
    for cb in callbacks:
        cb.on_train_begin(state)  # a checkpoint callback may restore a saved run here
    first_phase, done = _position(phases, state.epoch, log_every)
    last_good = copy_weights(module)
    where = "before the first record"
    try:
        for phase in phases[first_phase:] if not state.finished else ():
            totals: dict[str, float] = {}
            count, started = 0, time.perf_counter()
            for iteration in range(done + 1, phase.iterations + 1):
                where = f"phase {phase.name!r}, iteration {iteration}"
                index = next(batches)
                longest = int(seqs.lengths[index].max())
                idx = torch.from_numpy(index).to(device)
                losses = phase.step(values[idx, :longest], lengths[idx], index)
                for name, value in losses.items():
                    value = float(value)
                    if not math.isfinite(value):
                        module.load_state_dict(last_good)
                        raise TrainingDiverged(
                            f"Training diverged: {name} became {value} in phase {phase.name!r}, "
                            f"iteration {iteration}. The weights of the last record were kept. Lower "
                            "learning_rate or set max_grad_norm, and check that the data is "
                            "scaled.", history=state.history,
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
                    last_good = copy_weights(module)
                    state.finished = state.stop
                    for cb in callbacks:
                        cb.on_epoch_end(state, record)
                    state.finished = state.finished or state.stop
                    totals, count, started = {}, 0, time.perf_counter()
                    if state.stop:
                        break
            done = 0
            if state.stop:
                break
    except KeyboardInterrupt:
        module.load_state_dict(last_good)
        raise interruption(state, callbacks, where, f"record {state.epoch}") from None
    for cb in callbacks:
        cb.on_train_end(state)
    module.eval()
    return state.history
