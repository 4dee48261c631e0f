"""Exponential moving average of weights (Polyak averaging), on torch's ``AveragedModel``."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

__all__ = ["WeightAverage"]


class WeightAverage(AveragedModel):
    """An exponential moving average of ``modules``' parameters, started from their weights at
    the first :meth:`update_parameters` (use it on a GAN's generator: Yazici et al., ICLR 2019).

    Update ``t`` (from 1) moves the average towards the current weights with the decay
    ``min(decay, (1 + t) / (10 + t))``: short runs average over a shorter horizon (the usual
    warm-up of the decay). Its ``state_dict`` holds the average and the update count, so it can
    be registered as checkpoint state. :meth:`copy_to` writes the average into the modules.
    """

    def __init__(self, modules: Sequence[nn.Module], decay: float):
        self.decay = float(decay)
        super().__init__(nn.ModuleList(modules), multi_avg_fn=self._ema)

    def _ema(self, averages, currents, n_averaged) -> None:
        updates = int(n_averaged) + 1  # n_averaged counts the updates before this one
        decay = min(self.decay, (1 + updates) / (10 + updates))
        for average, weight in zip(averages, currents):
            average.lerp_(weight, 1.0 - decay)

    def copy_to(self, modules: Sequence[nn.Module]) -> None:
        """Write the averaged weights into ``modules`` (no-op before the first update)."""
        if int(self.n_averaged) == 0:
            return
        with torch.no_grad():
            targets = [p for m in modules for p in m.parameters()]
            for target, average in zip(targets, self.module.parameters()):
                target.copy_(average)
