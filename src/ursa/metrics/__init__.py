"""Metrics: clustering, generation, anomaly, privacy-leakage and explanation metrics as pure
functions on arrays, and
:func:`evaluate`, the headline metrics of a fitted estimator's job on a data set."""

from ._anomaly import *  # noqa: F401,F403
from ._anomaly import __all__ as _anomaly_all
from ._clustering import *  # noqa: F401,F403
from ._clustering import __all__ as _clustering_all
from ._explanations import deletion_check
from ._evaluate import Metric, evaluate, metric_table
from ._generation import *  # noqa: F401,F403
from ._generation import __all__ as _generation_all
from ._privacy import closest_distances, membership_inference_auc

__all__ = [*_clustering_all, *_generation_all, *_anomaly_all, "Metric", "evaluate", "metric_table",
           "closest_distances", "membership_inference_auc", "deletion_check"]
