"""The one training loop.

It runs *phases*: each is a name, a step ``step(values, lengths, index) -> {loss name: value}``
that does its own forward pass and optimiser updates (an objective's method, see
:mod:`ursa.training.objectives`), and a length, either ``epochs`` (passes over the training data,
one history record each, with optional validation and early stopping) or ``iterations`` (steps
on fresh batches, one record every ``log_every``). Single-objective training (an autoencoder, a
detector, a clusterer's stages) is the one-phase case, see :func:`train`; a GAN's pretraining and
adversarial phases run in sequence on the same loop.

The loop draws the batches (from memory or streamed, :mod:`ursa.training.sources`; across
processes, each process's share of them), checks every loss for divergence, keeps the last good
weights, handles Ctrl-C, averages the losses into history records and calls the callbacks
(progress bar, checkpoints, early stopping by a callback). It knows nothing of autoencoders or GANs. Checkpoints
are taken at records; with every optimiser gathered in an :class:`OptimizerSet` and whatever the
steps keep between calls registered as ``stateful``, a resumed run continues exactly where the
checkpoint was taken, mid-phase and mid-pass included.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..data import Sequences
from ..networks.losses import per_sequence_means
from . import distributed
from .precision import autocast
from .privacy import PrivacyBudget, PrivateUpdates
from .sources import BlockSource, DeviceData, MemoryBatches, StreamedBatches
from .state import (
    BatchStream,
    TrainingConfig,
    TrainingState,
    apply_update,
    copy_weights,
)

__all__ = ["History", "LossStep", "Phase", "TrainingDiverged", "TrainingInterrupted", "fit_epochs",
           "private_updates", "run", "train"]

StepFn = Callable[[torch.Tensor, torch.Tensor, np.ndarray], Mapping[str, float]]
LossFn = Callable[..., torch.Tensor]


class TrainingDiverged(FloatingPointError):
    """A loss became NaN or infinite. The module holds the last good weights; ``history`` holds
    the records written before."""

    def __init__(self, message: str, history: list | None = None):
        super().__init__(message)
        self.history = [] if history is None else history


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C). The module holds the weights of the last record; the
    message says where the last checkpoint is and how to resume from it."""


@dataclass
class Phase:
    """One stage of training.

    Parameters
    ----------
    name : str
        Shown in records (iteration phases) and messages.
    step : callable
        ``step(values, lengths, index) -> {loss name: float}``: one update on a batch (padded
        values, lengths, and the batch's positions in the data handed to :func:`run`). The first
        loss is the record's ``train_loss``. A step that finds its loss non-finite may return it
        without updating; the loop then restores the last good weights and raises.
    epochs, iterations : int
        The phase's length: passes over the training data (a record per pass) or steps (a record
        every ``log_every`` and at the end). Exactly one is given.
    evaluate : callable, optional
        ``evaluate(values, lengths, index) -> scalar``: the validation loss of a batch. With a
        validation split, epoch records get ``val_loss`` and early stopping monitors it.
    start_epoch : callable, optional
        Called with the epoch number (from 1) before each pass: learning-rate schedules. Being
        set from the number, a resumed run gets the same rates.
    patience : int, optional
        Epoch phases: stop once the monitored loss has not improved for this many epochs and
        restore the best weights (with a validation split only).
    """

    name: str
    step: StepFn
    epochs: int | None = None
    iterations: int | None = None
    evaluate: Callable | None = None
    start_epoch: Callable[[int], None] | None = None
    patience: int | None = None

    def __post_init__(self):
        if (self.epochs is None) == (self.iterations is None):
            raise ValueError(f"phase {self.name!r}: give exactly one of epochs and iterations")

    def n_records(self, log_every: int) -> int:
        if self.epochs is not None:
            return self.epochs
        return math.ceil(self.iterations / log_every) if self.iterations > 0 else 0


class LossStep:
    """The single-objective step: minimise ``loss_fn`` with Adam, clipping gradients.

    ``loss_fn(module, values, lengths)``, or with ``pass_index`` ``loss_fn(module, values,
    lengths, index)`` (objectives that keep per-sequence state, such as a clustering target).
    With ``private`` (:class:`PrivateUpdates`) each step is a DP-SGD step: per-sequence
    gradients, clipped, noised, losses averaged per sequence.
    """

    def __init__(self, module: nn.Module, loss_fn: LossFn, config: TrainingConfig,
                 pass_index: bool = False, private: PrivateUpdates | None = None):
        self.module, self.loss_fn, self.pass_index = module, loss_fn, pass_index
        self.private = private
        self.max_grad_norm, self.learning_rate = config.max_grad_norm, config.learning_rate
        self.warmup_epochs, self.precision = config.warmup_epochs, config.precision
        self.optimizer = torch.optim.Adam(module.parameters(), lr=config.learning_rate,
                                          weight_decay=config.weight_decay)
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.dp_optimizer = None if private is None else private.optimizer(self.optimizer)

    def loss(self, values, lengths, index) -> torch.Tensor:
        """The batch's loss, as float32; the forward pass under ``config.precision``."""
        with autocast(self.precision, values.device):
            if self.pass_index:
                loss = self.loss_fn(self.module, values, lengths, index)
            else:
                loss = self.loss_fn(self.module, values, lengths)
        return loss.float()

    def step(self, values, lengths, index) -> dict:
        if self.private is not None:
            return self._private_step(values, lengths, index)
        loss = self.loss(values, lengths, index)
        value = float(loss.detach())
        # Otherwise the loop restores the last good weights and raises; across processes every
        # process takes part in the update, and the loop sees the loss averaged over them.
        if math.isfinite(value) or distributed.active():
            return apply_update(self.optimizer, self.params, loss=loss,
                                max_grad_norm=self.max_grad_norm, report={"loss": value})
        return {"loss": value}

    def _private_step(self, values, lengths, index) -> dict:
        with self.private.capture(), per_sequence_means():
            loss = self.loss(values, lengths, index) if len(index) else None
            value = 0.0 if loss is None else float(loss.detach())  # an empty Poisson batch
            if math.isfinite(value):
                self.private.update(self.dp_optimizer, self.params, loss, len(index))
        return {"loss": value}

    def warm_up(self, epoch: int) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate * min(1.0, epoch / self.warmup_epochs)

    def phase(self, epochs: int, validate: bool = True, patience: int | None = None) -> Phase:
        return Phase("train", self.step, epochs=epochs, patience=patience,
                     evaluate=self.loss if validate else None,
                     start_epoch=self.warm_up if self.warmup_epochs else None)


def _split_sizes(n: int, fraction: float) -> int:
    """Sequences held out for validation (0 when a split would leave either side empty)."""
    n_val = int(math.floor(n * fraction))
    return 0 if n_val < 1 or n - n_val < 1 else n_val


def _validate(module, evaluate, data, batch_size: int) -> float:
    """The mean validation loss; across processes, each evaluates its part of the held-out
    sequences and the sums are combined."""
    module.eval()
    total, weight = 0.0, 0
    with torch.no_grad():
        for values, lengths, positions in data.batches(batch_size):
            total += float(evaluate(values, lengths, positions)) * len(positions)
            weight += len(positions)
    module.train()
    total, weight = distributed.global_sums(total, weight)
    return total / weight


def _step(phase: Phase, batches) -> tuple[Mapping[str, float], int]:
    """Run ``phase``'s step on the next batch: across processes, on this process's share, with
    the losses averaged over the whole batch. Returns the losses and the batch's size."""
    values, lengths, positions, share = batches.next_batch()
    with distributed.batch_share(share):
        return distributed.global_means(phase.step(values, lengths, positions)), share.total


def _position(phases: Sequence[Phase], records_done: int, log_every: int) -> tuple[int, int]:
    """(phase number, records done in it) after ``records_done`` records of the run."""
    for number, phase in enumerate(phases):
        records = phase.n_records(log_every)
        if records_done < records:
            return number, records_done
        records_done -= records
    return len(phases), 0


def run(
    module: nn.Module,
    phases: Sequence[Phase],
    seqs: Sequences | BlockSource,
    *,
    batch_size: int,
    rng: np.random.Generator,
    device: torch.device | str = "cpu",
    callbacks: Sequence = (),
    optimizer=None,
    stateful: Mapping[str, object] | None = None,
    validation_fraction: float = 0.0,
    log_every: int = 100,
    config: TrainingConfig | None = None,
    sample_rate: float | None = None,
) -> list[dict]:
    """Run ``phases`` in order on ``module`` (trained in place) and return the history.

    ``optimizer`` is every optimiser the steps use (an :class:`OptimizerSet` or one optimiser)
    and ``stateful`` whatever they keep between calls (name -> object with ``state_dict`` /
    ``load_state_dict``); both go into checkpoints. ``validation_fraction`` holds out that share of
    ``seqs`` (drawn from ``rng``) for the epoch phases' ``evaluate``. ``config`` is what callbacks
    see as ``state.config`` (its ``epochs`` set to the number of records the run writes).
    ``sample_rate`` draws batches by Poisson sampling at that rate instead (private training,
    see :class:`PrivateUpdates`). ``seqs`` may also be a :class:`BlockSource`, read a block at a
    time (epoch phases only; validation then holds out whole blocks, see
    :class:`StreamedBatches`). In a process group (:mod:`ursa.training.distributed`) each process
    trains on its share of every batch.

    Records: an epoch phase writes ``{"epoch": k, "train_loss": ..., ["val_loss": ...,]
    "seconds": ...}`` per pass, the losses averaged over sequences; an iteration phase writes
    ``{"epoch": k, "phase": name, "iteration": i, "train_loss": ..., <each loss>: ...,
    "seconds": ...}`` every ``log_every`` steps, averaged over steps. ``k`` counts the run's
    records; callbacks see each record as an epoch end. A NaN or infinite loss restores the last
    record's weights and raises :class:`TrainingDiverged` naming where; Ctrl-C restores them and
    raises :class:`TrainingInterrupted` saying how to resume. A checkpoint callback restoring a
    run in ``on_train_begin`` sets the records done; the loop continues from the next step.
    """
    if sample_rate is not None and distributed.active():
        raise ValueError(
            "privacy is set, but this fit runs across processes: private training runs in one "
            "process only (each process would add its own noise). Launch it without torchrun.")
    module.to(device)
    module.train()
    if isinstance(seqs, Sequences):
        distributed.check_same_data(seqs.n_sequences, seqs.lengths, seqs.values)
        n_val = _split_sizes(seqs.n_sequences, validation_fraction)
        if n_val:
            order = rng.permutation(seqs.n_sequences)
            train_data = DeviceData(seqs, np.sort(order[n_val:]), device)
            val_data = DeviceData(seqs, np.sort(order[:n_val]), device)
        else:
            train_data = DeviceData(seqs, np.arange(seqs.n_sequences), device)
            val_data = None
        batches = MemoryBatches(train_data, batch_size, rng, sample_rate=sample_rate)
    else:  # a BlockSource: validation holds out whole blocks
        if sample_rate is not None or any(p.iterations is not None for p in phases):
            raise ValueError("a streamed fit trains by epochs, without privacy")
        n_blocks = len(seqs.block_sizes)
        n_val = _split_sizes(n_blocks, validation_fraction)
        if n_blocks - n_val < distributed.world_size():
            raise ValueError(
                f"this streamed fit runs across {distributed.world_size()} processes but has "
                f"{n_blocks - n_val} training block(s): each process needs one of its own. "
                "Make the blocks smaller (block_size, and row groups of fewer rows) or use "
                "fewer processes.")
        order = rng.permutation(n_blocks) if n_val else np.arange(n_blocks)
        batches = StreamedBatches(seqs, np.sort(order[n_val:]), batch_size, rng, device)
        val_data = StreamedBatches(seqs, np.sort(order[:n_val]), batch_size, rng, device) \
            if n_val else None
    n_records = sum(p.n_records(log_every) for p in phases)
    config = replace(config or TrainingConfig(validation_fraction=validation_fraction,
                                              patience=None), epochs=max(1, n_records),
                     batch_size=batch_size)
    state = TrainingState(module, optimizer, config, rng=rng)
    state.stateful = {"batches": batches, **(stateful or {})}
    for cb in callbacks:
        cb.on_train_begin(state)  # a checkpoint callback may restore a saved run here
    first_phase, done = _position(phases, state.epoch, log_every)
    last_good = copy_weights(module)
    try:
        for phase in phases[first_phase:] if not state.finished else ():
            if phase.epochs is not None:
                last_good = _run_epochs(phase, done, state, batches, val_data, callbacks,
                                        last_good)
            else:
                last_good = _run_iterations(phase, done * log_every, log_every, state, batches,
                                            callbacks, last_good)
            done = 0
            if state.stop:
                break
    except _Interrupted as stop:
        module.load_state_dict(stop.last_good)
        raise _interruption(state, callbacks, stop.where, stop.held) from None
    if state.best_weights is not None:
        module.load_state_dict(state.best_weights)
    for cb in callbacks:
        cb.on_train_end(state)
    module.eval()
    return state.history


class _Interrupted(Exception):
    def __init__(self, where: str, held: str, last_good: dict):
        self.where, self.held, self.last_good = where, held, last_good


def _check(losses: Mapping, state: TrainingState, last_good: dict, where: str, unit: str) -> dict:
    """The losses as floats; a non-finite one restores ``last_good`` and raises."""
    values = {}
    for name, value in losses.items():
        value = float(value)
        if not math.isfinite(value):
            state.module.load_state_dict(last_good)
            raise TrainingDiverged(
                f"Training diverged: {name} became {value} {where}. The weights of the last "
                f"{unit} were kept. Lower learning_rate, keep max_grad_norm set, and check that "
                "the data is scaled (scaling='standard' or 'minmax').", history=state.history)
        values[name] = value
    return values


def _end_record(state: TrainingState, record: dict, callbacks) -> None:
    state.history.append(record)
    state.finished = state.stop  # early stopping ends a run for good; the epoch limit can be raised
    for cb in callbacks:
        cb.on_epoch_end(state, record)
    state.finished = state.finished or state.stop


def _run_epochs(phase, done, state, batches, val_data, callbacks, last_good):
    early_stopping = val_data is not None and phase.patience is not None
    epoch = done
    batch_number = 0
    try:
        for epoch in range(done + 1, phase.epochs + 1):
            started = time.perf_counter()
            if phase.start_epoch is not None:
                phase.start_epoch(epoch)
            totals: dict[str, float] = {}
            count = 0
            for batch_number in range(1, batches.start_pass() + 1):
                losses, size = _step(phase, batches)
                losses = _check(losses, state, last_good,
                                f"at epoch {epoch}, batch {batch_number}", "finished epoch")
                for name, value in losses.items():
                    totals[name] = totals.get(name, 0.0) + value * size
                count += size
            batch_number = 0
            names = list(totals)
            record = {"epoch": state.epoch + 1, "train_loss": totals[names[0]] / count,
                      **{name: totals[name] / count for name in names[1:]}}
            if val_data is not None and phase.evaluate is not None:
                record["val_loss"] = _validate(state.module, phase.evaluate, val_data,
                                               state.config.batch_size)
            record["seconds"] = time.perf_counter() - started
            state.epoch += 1
            last_good = copy_weights(state.module)
            monitored = record.get("val_loss", record["train_loss"])
            if monitored < state.best_loss:
                state.best_loss, state.since_best = monitored, 0
                if early_stopping:
                    state.best_weights = last_good
            else:
                state.since_best += 1
            if early_stopping and state.since_best >= phase.patience:
                state.stop = True
            _end_record(state, record, callbacks)
            if state.finished:
                break
    except KeyboardInterrupt:
        where = f"epoch {epoch}, batch {batch_number}" if batch_number else f"after epoch {epoch}"
        raise _Interrupted(where, f"epoch {state.epoch}", last_good) from None
    return last_good


def _run_iterations(phase, done, log_every, state, batches, callbacks, last_good):
    where = "before the first record"
    try:
        totals: dict[str, float] = {}
        count, started = 0, time.perf_counter()
        for iteration in range(done + 1, phase.iterations + 1):
            where = f"phase {phase.name!r}, iteration {iteration}"
            losses = _check(_step(phase, batches)[0], state, last_good,
                            f"in phase {phase.name!r}, iteration {iteration}", "record")
            for name, value in losses.items():
                totals[name] = totals.get(name, 0.0) + value
            count += 1
            if count == log_every or iteration == phase.iterations:
                means = {name: total / count for name, total in totals.items()}
                state.epoch += 1
                record = {"epoch": state.epoch, "phase": phase.name, "iteration": iteration,
                          "train_loss": next(iter(means.values())), **means,
                          "seconds": time.perf_counter() - started}
                last_good = copy_weights(state.module)
                _end_record(state, record, callbacks)
                totals, count, started = {}, 0, time.perf_counter()
                if state.stop:
                    break
    except KeyboardInterrupt:
        raise _Interrupted(where, f"record {state.epoch}", last_good) from None
    return last_good


def _interruption(state: TrainingState, callbacks: Sequence, where: str,
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


def fit_epochs(config: TrainingConfig, n_sequences: int) -> int:
    """Epochs of a one-phase fit: ``config.epochs``, cut to whole epochs by ``max_steps``."""
    if config.max_steps is None:
        return config.epochs
    n_train = n_sequences - _split_sizes(n_sequences, config.validation_fraction)
    per_epoch = -(-n_train // config.batch_size)
    return max(1, min(config.epochs, -(-config.max_steps // per_epoch)))


def private_updates(budget: PrivacyBudget, modules, n_sequences: int, batch_size: int, *,
                    epochs: int | None = None, steps: int | None = None,
                    releases: int = 0) -> PrivateUpdates:
    """DP-SGD on Poisson-sampled batches of expected size ``batch_size``, over ``epochs``
    passes (``round(n / batch_size)`` steps each) or ``steps`` steps, and ``releases`` noisy
    statistics."""
    rate = min(1.0, batch_size / n_sequences)
    if steps is None:
        steps = epochs * BatchStream.poisson_pass(rate)
    return PrivateUpdates(budget, modules, n_sequences=n_sequences, sample_rate=rate,
                          steps=steps, releases=releases)


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
    privacy: PrivacyBudget | PrivateUpdates | None = None,
) -> list[dict]:
    """Minimise ``loss_fn(module, values, lengths)`` over ``seqs``: the one-phase case of
    :func:`run`, with Adam, clipping, a validation split and early stopping from ``config``.

    With ``pass_index=True`` the loss is called as ``loss_fn(module, values, lengths, index)``,
    ``index`` being the batch's positions in ``seqs``. With a validation split and ``patience``,
    training stops once the validation loss has not improved for ``patience`` epochs and the best
    weights are restored. With ``privacy``, training is DP-SGD within that budget (all of
    ``seqs`` trains, no validation split: :func:`private_updates`), or by the given
    :class:`PrivateUpdates` when a fit spends one budget over several stages; what it spent is
    then ``history.privacy_spent``. Returns the history (one dict per epoch).
    """
    module.to(device)  # before the optimiser is built over its parameters
    private = privacy if isinstance(privacy, PrivateUpdates) else None
    if privacy is not None:
        config = replace(config, validation_fraction=0.0, patience=None)
    epochs = fit_epochs(config, seqs.n_sequences)
    if isinstance(privacy, PrivacyBudget):
        private = private_updates(privacy, [module], seqs.n_sequences, config.batch_size,
                                  epochs=epochs)
    objective = LossStep(module, loss_fn, config, pass_index=pass_index, private=private)
    history = run(module, [objective.phase(epochs, patience=config.patience)], seqs,
                  batch_size=config.batch_size, rng=rng, device=device, callbacks=callbacks,
                  optimizer=objective.optimizer, validation_fraction=config.validation_fraction,
                  config=config, stateful=None if private is None else {"privacy": private},
                  sample_rate=None if private is None else private.sample_rate)
    return History(history, None if private is None else private.spent())


class History(list):
    """A fit's records (a list of dicts), with ``privacy_spent``: what a private fit spent
    (:meth:`PrivateUpdates.spent`), None otherwise."""

    def __init__(self, records, privacy_spent: dict | None = None):
        super().__init__(records)
        self.privacy_spent = privacy_spent
