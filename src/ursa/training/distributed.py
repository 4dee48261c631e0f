"""Data-parallel training across processes with ``torch.distributed``.

A fit is data parallel whenever it runs in a process group of more than one process: one started
by ``torchrun`` (this module joins it on the first fit, gloo on the CPU, nccl on GPUs), or one
the caller initialised with :func:`torch.distributed.init_process_group`. Nothing else changes
for the caller: every process calls ``fit`` on the same data with the same parameters.

How a step is shared:

- Every process draws the same global batch of ``batch_size`` sequences (the seed is rank 0's)
  and trains on its contiguous share of it (:func:`shard`).
- After the backward pass the gradients are summed across processes, each process's weighted by
  its share of the batch (:func:`average_gradients`, called by
  :func:`ursa.training.apply_update`), before clipping and the optimiser step. The result is the
  gradient of the whole batch's per-sequence mean: the arithmetic of ``DistributedDataParallel``,
  done once after the backward pass because objectives call their networks' methods other than
  ``forward`` and a GAN step updates several networks. The global batch is ``batch_size``
  whatever the number of processes, so the learning rate needs no rescaling.
- Losses are averaged across processes at every step (in the gradients' all-reduce, or by
  :func:`global_means` for a step that reports them apart), so that every process records the
  same history, stops early at the same epoch and meets a diverging loss at the same step.

Only rank 0 writes checkpoints, progress bars and model files (:func:`is_writer`).
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
from typing import Iterator, Mapping, NamedTuple, Sequence

import numpy as np
import torch

__all__ = ["Averaged", "Share", "active", "average_gradients", "barrier", "batch_share",
           "batch_total", "broadcast_seed", "check_same_data", "gather", "global_means",
           "global_sums", "is_writer", "join", "launched", "local_device", "local_rows", "rank",
           "shard", "world_size"]


def _dist():
    return torch.distributed if torch.distributed.is_available() else None


def active() -> bool:
    """Whether fits here are data parallel: a process group of more than one process."""
    dist = _dist()
    return bool(dist is not None and dist.is_initialized() and dist.get_world_size() > 1)


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return torch.distributed.get_rank() if active() else 0


def world_size() -> int:
    """Processes in the group (1 outside one)."""
    return torch.distributed.get_world_size() if active() else 1


def is_writer() -> bool:
    """Whether this process writes files and progress: rank 0, or the only process."""
    return rank() == 0


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (or another launcher setting
    ``WORLD_SIZE``) as one of several."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def local_device(device: torch.device) -> torch.device:
    """``device`` with a GPU index for this process when launched on GPUs without one named:
    ``cuda`` becomes ``cuda:<LOCAL_RANK>``."""
    if device.type == "cuda" and device.index is None and launched():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def join(device: torch.device) -> None:
    """Join the process group ``torchrun`` set up, if this process was launched by it and has not
    joined yet: nccl for a GPU device, gloo otherwise."""
    dist = _dist()
    if dist is None or not launched() or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    atexit.register(_leave)


def _leave() -> None:
    """Leave the group joined by :func:`join` before the interpreter exits (a group left to be
    torn down at exit can abort the process while another still talks to it)."""
    dist = _dist()
    if dist is not None and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def _comm_device() -> torch.device:
    """Where tensors handed to collectives live: the current GPU under nccl, else the CPU."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_seed(seed: int) -> int:
    """Rank 0's ``seed`` on every process (so that ``random_state=None`` draws one run)."""
    if not active():
        return seed
    value = torch.tensor([seed], dtype=torch.int64, device=_comm_device())
    torch.distributed.broadcast(value, src=0)
    return int(value.item())


def check_same_data(n_sequences: int, lengths: np.ndarray, values: np.ndarray,
                    name: str = "X") -> None:
    """Raise ``ValueError`` on every process unless all were given the same data (compared by
    size and two sums, which any differing shard changes)."""
    if not active():
        return
    with np.errstate(all="ignore"):
        finite = np.where(np.isfinite(values), values, 0.0)
        summary = [float(n_sequences), float(np.sum(lengths)), float(finite.sum(dtype=np.float64)),
                   float(np.abs(finite).sum(dtype=np.float64))]
    mine = torch.tensor(summary, dtype=torch.float64, device=_comm_device())
    low, high = mine.clone(), mine.clone()
    torch.distributed.all_reduce(low, op=torch.distributed.ReduceOp.MIN)
    torch.distributed.all_reduce(high, op=torch.distributed.ReduceOp.MAX)
    if not torch.allclose(low, high, rtol=1e-9, atol=0.0):
        raise ValueError(
            f"{name} differs between the {world_size()} processes of this distributed fit "
            f"(rank {rank()} holds {n_sequences} sequences). Give every process the same data: "
            "each trains on its share of every batch. For data too large to load on every "
            "process, fit from a ursa.data.ParquetDataset, whose files each process streams "
            "its own share of.")


class Share(NamedTuple):
    """This process's part of a global batch: rows ``start:stop`` of ``total``, weighing
    ``weight`` (0 for a process given a stand-in row)."""

    start: int
    stop: int
    total: int
    weight: float


# The share of the global batch the current step trains on (set by the loop around each step).
_SHARE: contextvars.ContextVar[Share | None] = contextvars.ContextVar("ursa_batch_share",
                                                                     default=None)


def shard(index: np.ndarray) -> tuple[np.ndarray, Share]:
    """This process's contiguous part of the global batch ``index``, and its share (for
    :func:`batch_share`).

    A process left without a sequence (a batch smaller than the group) trains on the batch's
    first sequence with weight 0, so that it still takes part in every collective."""
    n = len(index)
    if not active() or n == 0:
        return index, Share(0, n, n, 1.0)
    bounds = np.linspace(0, n, world_size() + 1).round().astype(int)
    start, stop = int(bounds[rank()]), int(bounds[rank() + 1])
    if start == stop:
        return index[:1], Share(0, 1, n, 0.0)
    return index[start:stop], Share(start, stop, n, (stop - start) / n)


@contextlib.contextmanager
def batch_share(share: Share) -> Iterator[None]:
    """Within the block, this process's steps train on ``share`` of the global batch."""
    token = _SHARE.set(share)
    try:
        yield
    finally:
        _SHARE.reset(token)


def _weight() -> float:
    share = _SHARE.get()
    return 1.0 / world_size() if share is None else share.weight


def batch_total(n: int) -> int:
    """Rows of the global batch when a step draws random numbers per row of its ``n`` (its
    share): draw that many on every process and keep :func:`local_rows`, so that each row gets
    the numbers it gets in a one-process fit."""
    share = _SHARE.get()
    return share.total if active() and share is not None else n


def local_rows(values: torch.Tensor) -> torch.Tensor:
    """This process's rows of ``values``, drawn for the global batch (:func:`batch_total`)."""
    share = _SHARE.get()
    if not active() or share is None:
        return values
    return values[share.start:share.stop]


class Averaged(dict):
    """Losses already averaged over the processes (:func:`global_means` leaves them as they
    are): what a step returns when its losses travelled with its gradients."""


def average_gradients(params: Sequence[torch.Tensor],
                      losses: Mapping[str, float] | None = None) -> Averaged | None:
    """Replace each parameter's gradient by the batch-weighted sum of every process's, in one
    all-reduce. A parameter without a gradient on every process keeps none (as in a
    single-process step, where the optimiser then leaves it alone). ``losses`` (this process's)
    travel in the same all-reduce and come back averaged over the processes."""
    if not active() or not params:
        return None if losses is None else Averaged(losses)
    share = _weight()
    losses = dict(losses or {})
    pieces, used = [], []
    for p in params:
        pieces.append((p.grad.reshape(-1) * share) if p.grad is not None
                      else torch.zeros(p.numel(), dtype=p.dtype, device=p.device))
        used.append(1.0 if p.grad is not None else 0.0)
    device = params[0].device
    tail = torch.tensor(used + [float(v) * share for v in losses.values()], device=device)
    flat = torch.cat([torch.cat(pieces).float(), tail])
    comm = _comm_device()
    flat = flat.to(comm)
    torch.distributed.all_reduce(flat)
    flat = flat.to(device)
    n_losses = len(losses)
    reduced = flat[len(flat) - n_losses:].tolist() if n_losses else []
    counts = flat[len(flat) - n_losses - len(params):len(flat) - n_losses]
    offset = 0
    for p, count in zip(params, counts):
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).to(p.dtype) if count > 0 else None
        offset += n
    return Averaged(zip(losses, reduced))


def global_means(values: Mapping[str, float]) -> dict:
    """Each of ``values`` (this process's means over its share of the batch) as the mean over
    the global batch, the same on every process."""
    if not active() or not values or isinstance(values, Averaged):
        return dict(values)
    share = _weight()
    local = torch.tensor([float(v) * share for v in values.values()], dtype=torch.float64,
                         device=_comm_device())
    torch.distributed.all_reduce(local)
    return dict(zip(values, local.tolist()))


def global_sums(*values: float) -> list[float]:
    """Each of ``values`` summed over the processes."""
    if not active():
        return [float(v) for v in values]
    local = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_comm_device())
    torch.distributed.all_reduce(local)
    return local.tolist()


def gather(array: np.ndarray) -> list[np.ndarray]:
    """Every process's ``array`` (the same shape on each), in rank order."""
    if not active():
        return [array]
    mine = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64)).to(_comm_device())
    parts = [torch.empty_like(mine) for _ in range(world_size())]
    torch.distributed.all_gather(parts, mine)
    return [p.cpu().numpy() for p in parts]


def barrier() -> None:
    """Wait for every process (nothing outside a process group)."""
    if active():
        torch.distributed.barrier()
