"""Where the loop's batches come from: sequences held in memory, or blocks streamed from disk.

Both give the loop the same thing: :meth:`start_pass` (the number of steps of a fresh pass) and
:meth:`next_batch` (``values, lengths, positions, share``: this process's part of the next
global batch, on the device, its positions in the training data, and its share for
:func:`ursa.training.distributed.batch_share`); and, for validation, :meth:`batches`.
"""

from __future__ import annotations

import math
from typing import Iterator, Protocol

import numpy as np
import torch

from ..data import Sequences
from . import distributed
from .state import BatchStream, iter_batches

__all__ = ["BlockSource", "DeviceData", "MemoryBatches", "StreamedBatches"]


class BlockSource(Protocol):
    """Training data read a block at a time (e.g. an estimator's scaled view of a
    :class:`ursa.data.ParquetDataset`)."""

    n_sequences: int
    block_sizes: np.ndarray  # sequences per block
    block_starts: np.ndarray  # position of each block's first sequence

    def read_block(self, k: int) -> Sequences:
        """Block ``k``, ready for the network (scaled)."""


class DeviceData:
    """Sequences moved to the device once; batches are sliced from there. ``positions`` maps
    each held sequence to its position in the sequences handed to the loop."""

    def __init__(self, seqs: Sequences, positions: np.ndarray, device):
        self.seqs = seqs.subset(positions) if len(positions) != len(seqs) else seqs
        self.positions = positions
        self.values, self.lengths = self.seqs.tensors(device)
        self.device = device

    def batch(self, index: np.ndarray):
        """(values, lengths, positions) of the held sequences at ``index``."""
        longest = int(self.seqs.lengths[index].max()) if len(index) else 1
        idx = torch.from_numpy(index).to(self.device)
        return self.values[idx, :longest], self.lengths[idx], self.positions[index]

    def batches(self, batch_size: int) -> Iterator[tuple]:
        """This process's part of the held sequences, in order, ``batch_size`` at a time."""
        held = np.array_split(np.arange(len(self.positions)), distributed.world_size())
        mine = held[distributed.rank()]
        for start in range(0, len(mine), batch_size):
            yield self.batch(mine[start:start + batch_size])


class MemoryBatches:
    """Shuffled batches of sequences in memory (:class:`BatchStream`); across processes, each
    takes its share of the same global batch."""

    def __init__(self, data: DeviceData, batch_size: int, rng: np.random.Generator,
                 sample_rate: float | None = None):
        self.data = data
        self.stream = BatchStream(data.seqs, batch_size, rng, sample_rate=sample_rate)

    def start_pass(self) -> int:
        self.stream.pending.clear()
        return self.stream.new_pass()

    def next_batch(self):
        index = next(self.stream)
        local, share = distributed.shard(index)
        return (*self.data.batch(local), share)

    def state_dict(self) -> dict:
        return self.stream.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.stream.load_state_dict(state)


class StreamedBatches:
    """Batches read block by block from a :class:`BlockSource`.

    A pass visits the training blocks in a shuffled order and cuts each block into shuffled,
    length-bucketed batches (:func:`ursa.training.iter_batches`), so memory holds one block.
    With one process, the draws come from the run's generator in the order an in-memory fit
    makes them: a single block gives the batches an in-memory fit on the same sequences gives.
    Across processes, every process shuffles the same block order and reads every
    ``world_size``-th block of it; each batch holds ``ceil(batch_size / world_size)`` of its
    sequences (block shuffles are seeded from one draw per pass, the same on every process), and
    a pass is as many steps as the process with the fewest batches has, so that all step
    together.
    """

    def __init__(self, source: BlockSource, blocks: np.ndarray, batch_size: int,
                 rng: np.random.Generator, device):
        self.source, self.blocks = source, np.asarray(blocks, dtype=np.int64)
        self.batch_size, self.rng, self.device = batch_size, rng, device
        self._pending: Iterator | None = None
        self._left = 0

    def _local_size(self) -> int:
        return math.ceil(self.batch_size / distributed.world_size())

    def start_pass(self) -> int:
        order = self.rng.permutation(self.blocks) if len(self.blocks) > 1 else self.blocks
        size, world = self._local_size(), distributed.world_size()
        seed = int(self.rng.integers(2**63)) if world > 1 else None
        counts = [sum(math.ceil(int(self.source.block_sizes[k]) / size) for k in order[r::world])
                  for r in range(world)]
        self._left = min(counts)
        self._pending = self._generate(order[distributed.rank()::world], size, seed)
        return self._left

    def _block(self, k) -> tuple[DeviceData, Sequences]:
        """Block ``k`` on the device, its positions those in the training data."""
        seqs = self.source.read_block(int(k))
        start = int(self.source.block_starts[k])
        return DeviceData(seqs, start + np.arange(seqs.n_sequences), self.device), seqs

    def _generate(self, mine, size: int, seed: int | None):
        for k in mine:
            data, seqs = self._block(k)
            rng = self.rng if seed is None else np.random.default_rng([seed, int(k)])
            for index in iter_batches(seqs, size, rng):
                yield data.batch(index)

    def next_batch(self):
        if self._left <= 0:
            raise RuntimeError("next_batch called past the end of the pass")
        self._left -= 1
        values, lengths, positions = next(self._pending)
        n = len(positions)
        total = int(distributed.global_sums(n)[0])  # n itself in one process
        if self._left == 0:
            self._pending = None
        return values, lengths, positions, distributed.Share(0, n, total, n / total)

    def batches(self, batch_size: int) -> Iterator[tuple]:
        """This process's part of the blocks (every ``world_size``-th), in order."""
        for k in self.blocks[distributed.rank()::distributed.world_size()]:
            data, seqs = self._block(k)
            for index in iter_batches(seqs, batch_size):
                yield data.batch(index)

    # Checkpoints are taken at the end of an epoch, between passes: nothing is pending then.
    def state_dict(self) -> dict:
        if self._pending is not None:
            raise RuntimeError("a streamed pass cannot be checkpointed halfway")
        return {"streamed": True}

    def load_state_dict(self, state: dict) -> None:
        if not state.get("streamed"):
            raise ValueError("the saved batch positions are those of an in-memory fit")
