"""Batched evaluation in bounded memory: the one loop every inference path uses."""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np

__all__ = ["batch_rows", "map_rows"]


def batch_rows(n: int, batch_size: int, order: np.ndarray | None = None) -> Iterator:
    """Yield the rows of each batch of at most ``batch_size`` of ``n`` items: slices in input
    order, or, with ``order`` (a permutation), consecutive pieces of it as index arrays."""
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        yield slice(start, stop) if order is None else order[start:stop]


def map_rows(
    n: int,
    batch_size: int,
    fn: Callable[[object], Sequence[np.ndarray]],
    *,
    order: np.ndarray | None = None,
    time_axis: Sequence[bool] | None = None,
    n_timesteps: int | None = None,
) -> list[np.ndarray]:
    """Apply ``fn(rows) -> tuple of arrays`` batch by batch and gather the outputs by row.

    Each output is preallocated from the first batch's pieces (``n`` rows, their dtype) and every
    batch is written straight into it, so memory beyond the results stays one batch. Outputs
    flagged in ``time_axis`` have a time axis (axis 1) that is ``n_timesteps`` long in the result
    and may be shorter per batch (zero after each batch's longest sequence).
    """
    results: list[np.ndarray] | None = None
    flags: Sequence[bool] = ()
    for rows in batch_rows(n, batch_size, order):
        pieces = [np.asarray(p) for p in fn(rows)]
        if results is None:
            flags = time_axis or [False] * len(pieces)
            results = [
                np.zeros((n, n_timesteps, *p.shape[2:]) if has_time else (n, *p.shape[1:]),
                         dtype=p.dtype)
                for p, has_time in zip(pieces, flags)
            ]
        for out, piece, has_time in zip(results, pieces, flags):
            if has_time:
                out[rows, : piece.shape[1]] = piece
            else:
                out[rows] = piece
    if results is None:
        raise ValueError("nothing to evaluate: the input holds no sequences.")
    return results
