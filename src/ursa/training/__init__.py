"""The generic training loop and its callbacks."""

from .callbacks import Callback, Checkpoint, ProgressBar
from .loop import TrainingConfig, TrainingDiverged, TrainingState, iter_batches, train

__all__ = [
    "Callback",
    "Checkpoint",
    "ProgressBar",
    "TrainingConfig",
    "TrainingDiverged",
    "TrainingState",
    "iter_batches",
    "train",
]
