"""Callbacks: hooks the training loop calls at the start, after each epoch and at the end."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import torch

from . import distributed

__all__ = ["Callback", "ProgressBar", "Checkpoint", "CheckpointError"]


class Callback:
    """Base class: override any of the three hooks. Set ``state.stop = True`` to end training."""

    def on_train_begin(self, state) -> None:
        pass

    def on_epoch_end(self, state, record: dict) -> None:
        pass

    def on_train_end(self, state) -> None:
        pass

    def on_interrupt(self, state) -> str | None:
        """Called when training is interrupted (Ctrl-C); may return a line for the message."""
        return None


class ProgressBar(Callback):
    """A tqdm bar on standard error over the run's records, with the latest losses and the time
    left.

    The bar counts records: epochs of a pass-based phase, blocks of ``log_every`` iterations of an
    iteration-based one (the record's phase and iteration are shown beside the losses). It
    appears only once the run has taken ``delay`` seconds (default :attr:`DELAY`), so that quick
    fits stay silent.
    """

    DELAY = 2.0

    def __init__(self, description: str = "fit", delay: float | None = None):
        self.description = description
        self.delay = self.DELAY if delay is None else delay
        self._bar = None

    def on_train_begin(self, state) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=state.config.epochs, initial=state.epoch, desc=self.description,
                         unit="record", leave=False, delay=self.delay, file=sys.stderr)

    def on_epoch_end(self, state, record: dict) -> None:
        self._bar.update(1)
        shown = {k: record[k] for k in ("phase", "iteration") if k in record}
        shown.update({k: f"{v:.4g}" for k, v in record.items() if k.endswith("loss")})
        self._bar.set_postfix(shown, refresh=False)

    def on_train_end(self, state) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from: unreadable, or written by a different fit."""


class Checkpoint(Callback):
    """Save the whole training state every ``every`` epochs, and resume from it.

    The file ``directory/checkpoint.safetensors`` holds the weights, the optimiser's state, the
    best weights kept for early stopping, torch's and numpy's random generator states, the history,
    the epoch and whatever else the run registered in ``TrainingState.stateful``, so that a
    resumed run continues exactly where the saved one was: a fit killed mid-training and resumed
    ends with the same weights, bit for bit, as an uninterrupted fit
    (CPU, same seed and thread count). It is written to a temporary file, flushed to disk
    (``fsync``) and renamed over the previous one, so a crash at any moment leaves either the old
    or the new complete checkpoint. The last epoch is always saved, marked as finished.

    Parameters
    ----------
    directory : path
        Folder for the checkpoint (created if needed).
    every : int, default=1
        Save after every ``every``-th epoch (and after the last one).
    resume : bool, default=False
        In ``on_train_begin``, restore the saved state if ``directory`` holds a checkpoint.
    fingerprint : str, optional
        Identifies the fit (parameters and data). Resuming from a checkpoint with another
        fingerprint is refused, so that a run never continues on different data or settings.
    start : str, optional
        Identifies the run's starting point (for a stage that starts from an earlier stage's
        weights). A checkpoint of a run that started elsewhere is stale: the run starts afresh
        and overwrites it.
    """

    FILENAME = "checkpoint.safetensors"
    FORMAT = "ursa-checkpoint"
    FORMAT_VERSION = 2  # 2: every run saves its batch stream; the GAN average is AveragedModel state

    def __init__(self, directory, every: int = 1, resume: bool = False,
                 fingerprint: str | None = None, start: str | None = None):
        self.directory = Path(directory)
        self.every = every
        self.resume = resume
        self.fingerprint = fingerprint
        self.start = start
        self.last_epoch: int | None = None  # epoch of the newest checkpoint on disk
        self.resumed_from: int | None = None

    @property
    def path(self) -> Path:
        return self.directory / self.FILENAME

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, state) -> None:
        if self.resume and self.path.exists() and self._restore(state):
            self.resumed_from = self.last_epoch = state.epoch

    def on_epoch_end(self, state, record: dict) -> None:
        last = state.finished or state.stop or state.epoch >= state.config.epochs
        if last or record["epoch"] % self.every == 0:
            self._write(state)

    def on_interrupt(self, state) -> str:
        if self.last_epoch is None:
            return (f"No checkpoint was written yet (one is written every {self.every} "
                    f"epoch(s) to {self.directory}).")
        return (f"The last checkpoint ({self.path}, epoch {self.last_epoch}) is complete: call "
                "fit again with the same data, parameters and checkpoint_dir and resume=True to "
                "continue from it.")

    # ------------------------------------------------------------------ writing
    def _write(self, state) -> None:
        from safetensors.torch import save_file

        if not distributed.is_writer():  # across processes, rank 0 writes for all
            return

        tensors = {f"module.{k}": v for k, v in state.module.state_dict().items()}
        if state.best_weights is not None:
            tensors.update({f"best.{k}": v for k, v in state.best_weights.items()})
        optimizer = state.optimizer.state_dict()
        for param_id, slots in optimizer["state"].items():
            for slot, value in slots.items():
                tensors[f"optimizer.{param_id}.{slot}"] = torch.as_tensor(value)
        tensors["rng.torch"] = torch.get_rng_state()
        gpu = _module_gpu(state.module)
        if gpu is not None:  # dropout and augmentations on a GPU draw from that GPU's generator
            tensors["rng.cuda"] = torch.cuda.get_rng_state(gpu)
        extra: dict = {}
        for name, obj in state.stateful.items():
            extra[name] = {}
            for key, value in obj.state_dict().items():
                if isinstance(value, torch.Tensor):
                    tensors[f"stateful.{name}.{key}"] = value
                else:
                    extra[name][key] = value
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        metadata = {
            "format": self.FORMAT,
            "format_version": str(self.FORMAT_VERSION),
            "fingerprint": self.fingerprint or "",
            "start": self.start or "",
            "state": json.dumps({
                "epoch": state.epoch,
                "finished": bool(state.finished or state.stop),  # stopped early
                "best_loss": state.best_loss if math.isfinite(state.best_loss) else None,
                "since_best": state.since_best,
                "history": state.history,
                "param_groups": optimizer["param_groups"],
                "rng_numpy": state.rng.bit_generator.state if state.rng is not None else None,
                "stateful": extra,
            }),
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.FILENAME + ".tmp")
        save_file(tensors, str(tmp), metadata=metadata)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_directory(self.directory)
        self.last_epoch = state.epoch

    # ------------------------------------------------------------------ reading
    def _restore(self, state) -> bool:
        """Restore the saved run into ``state``; False (nothing restored) when the saved run is
        stale, having started from another point than this one (see ``start``)."""
        from safetensors import SafetensorError, safe_open

        where = f"checkpoint {str(self.path)!r}"
        try:
            with safe_open(str(self.path), framework="pt") as fh:
                metadata = fh.metadata() or {}
                if self.start is not None and metadata.get("start") != self.start:
                    return False  # the run starts afresh and overwrites the file
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"{where} cannot be read ({exc}); delete it to start afresh."
            ) from None
        if metadata.get("format") != self.FORMAT or metadata.get("format_version") != str(
            self.FORMAT_VERSION
        ):
            raise CheckpointError(f"{where} is not an ursa checkpoint of format version "
                                  f"{self.FORMAT_VERSION}; delete it to start afresh.")
        if self.fingerprint is not None and metadata.get("fingerprint") != self.fingerprint:
            raise CheckpointError(
                f"{where} was written by a fit with other data or parameters; resume with the "
                "same X and parameters, or use another checkpoint_dir (or delete the file) to "
                "start afresh."
            )
        saved = json.loads(metadata["state"])
        saved_extra = saved.get("stateful", {})
        missing = [name for name in state.stateful if name not in saved_extra]
        if missing:  # checked before anything is restored
            raise CheckpointError(f"{where} holds no {missing[0]!r} state, which this fit needs; "
                                  "delete it to start afresh.")
        module = {k[len("module."):]: v for k, v in tensors.items() if k.startswith("module.")}
        state.module.load_state_dict(module, strict=True)
        best = {k[len("best."):]: v for k, v in tensors.items() if k.startswith("best.")}
        state.best_weights = best or None
        slots: dict = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, param_id, slot = key.split(".", 2)
                slots.setdefault(int(param_id), {})[slot] = value
        state.optimizer.load_state_dict({"state": slots, "param_groups": saved["param_groups"]})
        torch.set_rng_state(tensors["rng.torch"])
        gpu = _module_gpu(state.module)
        if gpu is not None and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], gpu)
        if state.rng is not None and saved["rng_numpy"] is not None:
            state.rng.bit_generator.state = saved["rng_numpy"]
        state.epoch = int(saved["epoch"])
        state.history[:] = saved["history"]
        state.best_loss = math.inf if saved["best_loss"] is None else float(saved["best_loss"])
        state.since_best = int(saved["since_best"])
        state.finished = bool(saved["finished"])
        for name, obj in state.stateful.items():
            prefix = f"stateful.{name}."
            obj.load_state_dict({**saved_extra[name],
                                 **{k[len(prefix):]: v for k, v in tensors.items()
                                    if k.startswith(prefix)}})
        return True


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _module_gpu(module) -> torch.device | None:
    """The GPU ``module``'s parameters live on, or None on the CPU."""
    param = next(module.parameters(), None)
    return param.device if param is not None and param.device.type == "cuda" else None
