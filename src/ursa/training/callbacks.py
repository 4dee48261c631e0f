"""Callbacks: hooks the training loop calls at the start, after each epoch and at the end."""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["Callback", "ProgressBar", "Checkpoint"]


class Callback:
    """Base class: override any of the three hooks. Set ``state.stop = True`` to end training."""

    def on_train_begin(self, state) -> None:
        pass

    def on_epoch_end(self, state, record: dict) -> None:
        pass

    def on_train_end(self, state) -> None:
        pass


class ProgressBar(Callback):
    """A tqdm bar over epochs showing the latest losses."""

    def __init__(self, description: str = "fit"):
        self.description = description
        self._bar = None

    def on_train_begin(self, state) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=state.config.epochs, desc=self.description, unit="epoch", leave=False)

    def on_epoch_end(self, state, record: dict) -> None:
        self._bar.update(1)
        self._bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k.endswith("loss")})

    def on_train_end(self, state) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Checkpoint(Callback):
    """Write the module's weights (safetensors) and the history (JSON) every ``every`` epochs.

    Files are written to a temporary name, flushed to disk and renamed, so a crash never leaves a
    half-written checkpoint: ``directory/checkpoint.safetensors`` always holds a complete epoch.
    """

    def __init__(self, directory, every: int = 1):
        self.directory = Path(directory)
        self.every = every

    def on_epoch_end(self, state, record: dict) -> None:
        if record["epoch"] % self.every:
            return
        from safetensors.torch import save_file

        self.directory.mkdir(parents=True, exist_ok=True)
        weights = {k: v.detach().cpu().contiguous() for k, v in state.module.state_dict().items()}
        target = self.directory / "checkpoint.safetensors"
        tmp = target.with_suffix(".tmp")
        save_file(weights, str(tmp), metadata={"epoch": str(record["epoch"]),
                                               "history": json.dumps(state.history)})
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
