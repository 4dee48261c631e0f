"""Metrics as pure functions on arrays: clustering, generation and anomaly detection."""

from ._anomaly import *  # noqa: F401,F403
from ._anomaly import __all__ as _anomaly_all
from ._clustering import *  # noqa: F401,F403
from ._clustering import __all__ as _clustering_all
from ._generation import *  # noqa: F401,F403
from ._generation import __all__ as _generation_all

__all__ = [*_clustering_all, *_generation_all, *_anomaly_all]
