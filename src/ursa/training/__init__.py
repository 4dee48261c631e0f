"""The one training loop, its state and its callbacks, differentially private updates, training
across processes (:mod:`ursa.training.distributed`), and training utilities (weight averaging,
step threads)."""

from . import distributed
from .averaging import WeightAverage
from .callbacks import Callback, Checkpoint, CheckpointError, ProgressBar
from .loop import (
    History,
    LossStep,
    Phase,
    TrainingDiverged,
    TrainingInterrupted,
    fit_epochs,
    private_updates,
    run,
    train,
)
from .precision import PRECISIONS, autocast, bf16_native, check_precision
from .privacy import PrivacyBudget, PrivacyBudgetExceeded, PrivateUpdates, privacy_budget
from .state import (
    BatchStream,
    Counters,
    OptimizerSet,
    TrainingConfig,
    TrainingState,
    apply_update,
    copy_weights,
    iter_batches,
)
from .threads import THREAD_LOCK, available_cores, intra_op_threads, step_executor

__all__ = [
    "BatchStream",
    "PRECISIONS",
    "THREAD_LOCK",
    "Callback",
    "Checkpoint",
    "CheckpointError",
    "Counters",
    "History",
    "LossStep",
    "OptimizerSet",
    "Phase",
    "PrivacyBudget",
    "PrivacyBudgetExceeded",
    "PrivateUpdates",
    "ProgressBar",
    "TrainingConfig",
    "TrainingDiverged",
    "TrainingInterrupted",
    "TrainingState",
    "WeightAverage",
    "apply_update",
    "autocast",
    "available_cores",
    "bf16_native",
    "check_precision",
    "copy_weights",
    "distributed",
    "fit_epochs",
    "intra_op_threads",
    "iter_batches",
    "privacy_budget",
    "private_updates",
    "run",
    "step_executor",
    "train",
]
