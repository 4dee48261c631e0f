"""scikit-learn style estimators wiring networks, the training loop and the data layer.

The estimator table (:data:`ESTIMATORS`) lists every estimator of the library with its task name;
:func:`estimator_class` imports one by task or class name, :func:`entry_for` finds the row of a
name, class or instance.
"""

from .._registry import (
    ESTIMATORS,
    EstimatorEntry,
    available_tasks,
    entry_for,
    estimator_class,
    task_names,
)
from ._explain import Explanation
from .autoencoder import SequenceAutoencoder
from .base import BaseSequenceEstimator

__all__ = [
    "ESTIMATORS",
    "BaseSequenceEstimator",
    "EstimatorEntry",
    "Explanation",
    "SequenceAutoencoder",
    "available_tasks",
    "entry_for",
    "estimator_class",
    "task_names",
    "validate_params",
]


def validate_params(estimator) -> None:
    """Check every parameter of ``estimator`` against its declared constraints, as ``fit`` does
    first, without fitting.

    Parameters
    ----------
    estimator : ursa estimator

    Raises
    ------
    ValueError, TypeError
        A parameter is out of its range or of the wrong type; the message names the parameter
        and the values it accepts.
    """
    estimator._validate_params()
