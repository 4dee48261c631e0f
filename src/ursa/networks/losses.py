"""Losses over padded batches: padding never counts."""

from __future__ import annotations

import torch

from .recurrent import step_mask


def step_errors(prediction: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Squared error averaged over features: (batch, time); zero on padding."""
    errors = (prediction - target).pow(2).mean(dim=-1)  # (batch, time)
    if bool((lengths == target.size(1)).all()):
        return errors
    return errors * step_mask(lengths, target.size(1))


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the valid steps of every sequence in the batch."""
    if bool((lengths == target.size(1)).all()):
        return torch.nn.functional.mse_loss(prediction, target)
    return step_errors(prediction, target, lengths).sum() / lengths.sum()
