"""The generic training loop and its callbacks."""

from .callbacks import Callback, Checkpoint, CheckpointError, ProgressBar
from .loop import (
    TrainingConfig,
    TrainingDiverged,
    TrainingInterrupted,
    TrainingState,
    iter_batches,
    train,
)

__all__ = [
    "Callback",
    "Checkpoint",
    "CheckpointError",
    "ProgressBar",
    "TrainingConfig",
    "TrainingDiverged",
    "TrainingInterrupted",
    "TrainingState",
    "iter_batches",
    "train",
]
