"""URSA: Unsupervised Recurrent Sequence Analysis."""

from . import data, datasets, networks, training
from .estimators import SequenceAutoencoder
from .persistence import ModelFileError, load
from .training import TrainingDiverged

__version__ = "0.1.0"

__all__ = [
    "ModelFileError",
    "SequenceAutoencoder",
    "TrainingDiverged",
    "data",
    "datasets",
    "load",
    "networks",
    "training",
    "__version__",
]
