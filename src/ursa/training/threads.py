"""torch's intra-op thread count, set for a block; and running independent parts of a training
step on a second thread (opt-in)."""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

__all__ = ["THREAD_LOCK", "available_cores", "intra_op_threads", "step_executor"]

# torch's thread count and default generator are process-wide: what changes them (fits, and
# predictions or scores that set the thread count) holds this lock.
THREAD_LOCK = threading.RLock()


@contextlib.contextmanager
def intra_op_threads(count: int | None):
    """Run the block with ``count`` torch intra-op threads, restoring the caller's setting after
    (holding :data:`THREAD_LOCK`, since the count is process-wide). With None nothing changes
    and no lock is taken, so that inference from several threads runs concurrently."""
    if count is None:
        # OpenMP's thread count is per calling thread: a thread other than the one that set
        # torch's count would otherwise run with the default and round differently.
        torch.set_num_threads(torch.get_num_threads())
        yield
        return
    with THREAD_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(count)
        try:
            yield
        finally:
            torch.set_num_threads(before)


class _InlineExecutor:
    """Runs each submitted call at once, in the calling thread."""

    class _Done:
        def __init__(self, value):
            self.value = value

        def result(self):
            return self.value

    def submit(self, fn, *args, **kwargs):
        return self._Done(fn(*args, **kwargs))


@contextlib.contextmanager
def step_executor(threads: int, share_cores: bool):
    """What a step hands its independent parts to (``submit(fn, *args).result()``): the calling
    thread itself when ``threads`` is 1; when it is 2, a second thread running with the calling
    thread's intra-op thread count (OpenMP keeps that count per thread). With ``share_cores``
    the two threads split that count between them (at least one each) for the duration.

    A part's operations run in the same order either way, so a step whose parts draw no random
    numbers gives the same result on one thread or two.
    """
    if threads < 2:
        yield _InlineExecutor()
        return
    before = torch.get_num_threads()
    count = max(1, before // 2) if share_cores else before
    torch.set_num_threads(count)
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="ursa-step",
                                initializer=torch.set_num_threads, initargs=(count,)) as executor:
            yield executor
    finally:
        torch.set_num_threads(before)


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
