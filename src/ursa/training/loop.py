"""One generic training loop for every estimator.

The loop knows nothing of autoencoders, clusterers or GANs: it is handed a module, a loss function
``loss_fn(module, values, lengths) -> scalar tensor`` and padded sequences, and does minibatches,
Adam, gradient clipping, a validation split, early stopping, divergence checks and callbacks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..data import Sequences

__all__ = [
    "TrainingConfig",
    "TrainingState",
    "TrainingDiverged",
    "TrainingInterrupted",
    "train",
    "iter_batches",
    "copy_weights",
]

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]

# Batches are drawn from pools of this many batches sorted by length, so that a batch holds
# sequences of similar length (little padding) while batch composition still varies per epoch.
BUCKET_POOL = 20


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite. The module holds the last good weights; ``history`` holds
    the records of the finished epochs."""

    def __init__(self, message: str, history: list | None = None):
        super().__init__(message)
        self.history = [] if history is None else history


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C). The module holds the weights of the last finished epoch;
    the message says where the last checkpoint is and how to resume from it."""


@dataclass
class TrainingConfig:
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


@dataclass
class TrainingState:
    """Everything a run needs to continue: what callbacks see, and what a checkpoint saves.

    ``epoch`` is the last finished epoch. ``best_weights`` is set when early stopping is active.
    A callback may restore all of it in ``on_train_begin`` (resuming) and set ``finished`` when the
    restored run had already ended.
    """

    module: nn.Module
    optimizer: torch.optim.Optimizer
    config: TrainingConfig
    rng: np.random.Generator | None = None
    history: list = field(default_factory=list)
    epoch: int = 0
    best_loss: float = math.inf
    since_best: int = 0
    best_weights: dict | None = None
    stop: bool = False  # a callback sets this to end training after the current epoch
    finished: bool = False  # stopped early (early stopping or a callback): a resumed run does nothing
    # Further state a run needs to continue, saved by a checkpoint beside the module and the
    # optimiser: name -> object with state_dict() / load_state_dict(), the state dict flat
    # ({key: tensor or JSON value}). Used by multi-phase training (a batch stream's position,
    # a generator's weight average, a step's counters).
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


def _split(seqs: Sequences, fraction: float, rng: np.random.Generator):
    """(train positions, validation positions or None), both sorted positions into ``seqs``."""
    n_val = int(math.floor(seqs.n_sequences * fraction))
    if n_val < 1 or seqs.n_sequences - n_val < 1:
        return np.arange(seqs.n_sequences), None
    order = rng.permutation(seqs.n_sequences)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class _DeviceData:
    """Sequences moved to the device once; batches are sliced from there.

    ``positions`` maps each held sequence to its position in the sequences handed to ``train``.
    """

    def __init__(self, seqs: Sequences, positions: np.ndarray, device):
        self.seqs = seqs.subset(positions) if len(positions) != len(seqs) else seqs
        self.positions = positions
        self.values, self.lengths = self.seqs.tensors(device)
        self.device = device

    def batch(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        longest = int(self.seqs.lengths[index].max())
        idx = torch.from_numpy(index).to(self.device)
        return self.values[idx, :longest], self.lengths[idx]


def _call(loss_fn, module, data: _DeviceData, index: np.ndarray, pass_index: bool):
    values, lengths = data.batch(index)
    if pass_index:
        return loss_fn(module, values, lengths, data.positions[index])
    return loss_fn(module, values, lengths)


def _evaluate(module, loss_fn, data: _DeviceData, batch_size: int, pass_index: bool) -> float:
    module.eval()
    total, weight = 0.0, 0
    with torch.no_grad():
        for index in iter_batches(data.seqs, batch_size):
            total += float(_call(loss_fn, module, data, index, pass_index)) * len(index)
            weight += len(index)
    module.train()
    return total / weight


def train(
    module: nn.Module,
    loss_fn: LossFn,
    seqs: Sequences,
    config: TrainingConfig,
    *,
    rng: np.random.Generator,
    device: torch.device | str = "cpu",
    callbacks: Sequence = (),
    pass_index: bool = False,
) -> list[dict]:
    """Train ``module`` in place and return the history (one dict per epoch).

    With ``pass_index=True`` the loss is called as ``loss_fn(module, values, lengths, index)``,
    ``index`` being the batch's positions in ``seqs`` (for objectives that keep per-sequence state,
    such as a clustering target distribution).

    With a validation split and ``patience``, training stops once the validation loss has not
    improved for ``patience`` epochs and the best weights are restored. A NaN or infinite loss raises
    :class:`TrainingDiverged` naming the epoch and batch, after restoring the last good weights.
    """
    module.to(device)
    module.train()
    train_positions, val_positions = _split(seqs, config.validation_fraction, rng)
    train_data = _DeviceData(seqs, train_positions, device)
    val_data = _DeviceData(seqs, val_positions, device) if val_positions is not None else None
    if config.max_steps is not None:
        per_epoch = -(-len(train_positions) // config.batch_size)  # iter_batches' batch count
        capped = max(1, min(config.epochs, -(-config.max_steps // per_epoch)))
        config = replace(config, epochs=capped)
    optimizer = torch.optim.Adam(
        module.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    state = TrainingState(module, optimizer, config, rng=rng)
    parameters = [p for p in module.parameters() if p.requires_grad]
    early_stopping = val_data is not None and config.patience is not None

    for cb in callbacks:
        cb.on_train_begin(state)  # a checkpoint callback may restore a saved run here
    last_good = copy_weights(module)
    epoch, batch_number = state.epoch, 0
    try:
        while not state.finished and state.epoch < config.epochs:
            epoch = state.epoch + 1
            started = time.perf_counter()
            if config.warmup_epochs:  # set from the epoch number: a resumed run gets the same rates
                for group in optimizer.param_groups:
                    group["lr"] = config.learning_rate * min(1.0, epoch / config.warmup_epochs)
            total, count = 0.0, 0
            for batch_number, index in enumerate(
                iter_batches(train_data.seqs, config.batch_size, state.rng), 1
            ):
                optimizer.zero_grad(set_to_none=True)
                loss = _call(loss_fn, module, train_data, index, pass_index)
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    module.load_state_dict(last_good)
                    raise TrainingDiverged(
                        f"Training diverged: the loss became {loss_value} at epoch {epoch}, batch "
                        f"{batch_number}. The weights of the last finished epoch were kept. Lower "
                        f"learning_rate (now {config.learning_rate}), keep max_grad_norm set, and "
                        "check that the data is scaled (scaling='standard').",
                        history=state.history,
                    )
                loss.backward()
                if config.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
                optimizer.step()
                total += loss_value * len(index)
                count += len(index)
            batch_number = 0
            record = {"epoch": epoch, "train_loss": total / count}
            if val_data is not None:
                record["val_loss"] = _evaluate(
                    module, loss_fn, val_data, config.batch_size, pass_index
                )
            record["seconds"] = time.perf_counter() - started
            state.history.append(record)
            state.epoch = epoch
            last_good = copy_weights(module)

            monitored = record.get("val_loss", record["train_loss"])
            if monitored < state.best_loss:
                state.best_loss, state.since_best = monitored, 0
                if early_stopping:
                    state.best_weights = last_good
            else:
                state.since_best += 1
            if early_stopping and state.since_best >= config.patience:
                state.stop = True
            state.finished = state.stop  # early stopping ends a run for good; the epoch limit can be raised
            for cb in callbacks:
                cb.on_epoch_end(state, record)
            state.finished = state.finished or state.stop
    except KeyboardInterrupt:
        module.load_state_dict(last_good)
        where = f"epoch {epoch}, batch {batch_number}" if batch_number else f"after epoch {epoch}"
        raise interruption(state, callbacks, where, f"epoch {state.epoch}") from None

    if state.best_weights is not None:
        module.load_state_dict(state.best_weights)
    for cb in callbacks:
        cb.on_train_end(state)
    module.eval()
    return state.history


def interruption(state: TrainingState, callbacks: Sequence, where: str,
                 held: str) -> TrainingInterrupted:
    """The error for a run stopped by Ctrl-C at ``where`` whose module now holds the weights of
    ``held``, with the callbacks' hints (where the last checkpoint is, how to resume)."""
    hints = [h for h in (cb.on_interrupt(state) for cb in callbacks
                         if hasattr(cb, "on_interrupt")) if h]
    return TrainingInterrupted(
        f"Training interrupted at {where}; the module holds the weights of {held}. "
        + (" ".join(hints) if hints else
           "Set checkpoint_dir to be able to resume an interrupted fit.")
    )


def copy_weights(module: nn.Module) -> dict:
    """A detached copy of ``module``'s state dict (weights to restore later)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
