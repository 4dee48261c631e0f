"""scikit-learn style estimators wiring networks, the training loop and the data layer."""

from .autoencoder import SequenceAutoencoder
from .base import BaseSequenceEstimator

__all__ = ["BaseSequenceEstimator", "SequenceAutoencoder"]
