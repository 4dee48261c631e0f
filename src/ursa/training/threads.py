"""Running independent parts of a training step on a second thread (opt-in)."""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

import torch

__all__ = ["available_cores", "step_executor"]


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
