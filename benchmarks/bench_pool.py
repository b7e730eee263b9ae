"""Runs a benchmark's jobs on one torch thread each, in this process or in spawned worker processes.

Shared by ``auto_bounds`` and ``time_to_accuracy``: the runs are tiny, so each gets one thread (two workers fill
two cores, and the results do not depend on the number of workers).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from common import quiet_lightning

__all__ = ["mapped", "worker_init"]


def worker_init() -> None:
    """One torch thread and quiet Lightning, in this process (what every worker process starts with)."""
    torch.set_num_threads(1)
    quiet_lightning()


@contextmanager
def mapped(function: Callable[[Any], Any], items: Iterable[Any], workers: int,
           ordered: bool = True) -> Iterator[Iterator[Any]]:
    """The results of ``function`` on ``items``, computed lazily in ``workers`` spawned processes.

    Args:
        function: a picklable (module-level) function of one item.
        items: its arguments.
        workers: worker processes; 1 or fewer computes in this process (after :func:`worker_init`).
        ordered: results in the order of ``items``; otherwise as they finish (``workers > 1`` only).

    The pool is closed and joined when the ``with`` block ends.
    """
    if workers <= 1:
        worker_init()
        yield map(function, items)
        return
    pool = multiprocessing.get_context("spawn").Pool(workers, initializer=worker_init)
    try:
        yield (pool.imap if ordered else pool.imap_unordered)(function, items)
    finally:
        pool.close()
        pool.join()
