"""URSA: Unsupervised Recurrent Sequence Analysis."""

import importlib

from . import data, datasets, networks, training
from ._registry import ESTIMATORS
from .estimators import SequenceAutoencoder
from .persistence import ModelFileError, load
from .training import TrainingDiverged

__version__ = "0.1.0"

# Imported on first use: keeps `import ursa` fast and keeps matplotlib (plots) and the estimator
# modules a process never uses out of it. The estimator classes come from the one estimator table.
_LAZY = {
    **{entry.class_name: entry.module for entry in ESTIMATORS},
    "metrics": "ursa.metrics",
    "plots": "ursa.plots",
}

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
    *(name for name in _LAZY if name not in globals()),  # SequenceAutoencoder is imported above
]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ursa' has no attribute {name!r}")
    imported = importlib.import_module(module)
    value = imported if module.rsplit(".", 1)[-1] == name else getattr(imported, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
