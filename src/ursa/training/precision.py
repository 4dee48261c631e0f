"""Numeric precision of training and inference: float32, or bfloat16 autocast where the hardware
computes bfloat16 natively."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["PRECISIONS", "autocast", "bf16_native", "check_precision"]

PRECISIONS = ("float32", "bfloat16")


def bf16_native(device) -> bool:
    """Whether ``device`` computes bfloat16 matrix products natively: a CPU with AMX or
    AVX512-BF16, or a CUDA GPU that supports bfloat16."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    return False


def check_precision(precision: str, device) -> None:
    """Refuse ``precision="bfloat16"`` on a device without native bfloat16, where emulating it
    would be slower than float32."""
    if precision == "bfloat16" and not bf16_native(device):
        where = "this CPU has neither AMX nor AVX512-BF16" if torch.device(device).type == "cpu" \
            else f"{device} does not support bfloat16"
        raise ValueError(f"precision='bfloat16' needs native bfloat16 arithmetic, and {where}: "
                         "emulated, it would be slower than float32. Use precision='float32'.")


def autocast(precision: str, device):
    """A context in which the forward pass runs in ``precision``: torch's autocast to bfloat16
    (matrix products and recurrent layers in bfloat16, weights and reductions in float32), or
    nothing for float32."""
    if precision != "bfloat16":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
