"""The range test's view of the training data: fresh iterators over the Trainer's train loaders.

The sweep must not advance the Trainer's own iterators (nor reset persistent workers), and it combines several
loaders as the fit loop does (``max_size_cycle``), starting over when they run out.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import torch

from lightning_clr._compat import NAMESPACES

__all__ = ["batches"]


class _FreshIterable:
    """Iterates a loader with a new iterator that leaves the Trainer's own one (and persistent workers) alone."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __iter__(self) -> Iterator[Any]:
        loader = self.loader
        if isinstance(loader, torch.utils.data.DataLoader) and loader.num_workers > 0 and loader.persistent_workers:
            return loader._get_iterator()  # DataLoader.__iter__ would reset the Trainer's cached iterator
        return iter(loader)


def _wrap_tree(item: Any) -> Any:
    if isinstance(item, dict):
        return {k: _wrap_tree(v) for k, v in item.items()}
    if isinstance(item, (list, tuple)):
        return type(item)(_wrap_tree(v) for v in item)
    return _FreshIterable(item)


def _combined_loader(iterables: Any) -> Any:
    """The loaders combined as the fit loop combines them (``max_size_cycle``), each with a fresh iterator."""
    namespace = NAMESPACES[0]  # pytorch_lightning, or lightning.pytorch when only the unified package is installed
    combined = importlib.import_module(f"{namespace}.utilities.combined_loader").CombinedLoader
    return combined(_wrap_tree(iterables), mode="max_size_cycle")


def batches(iterables: Any, max_restarts: int) -> Iterator[tuple[Any, int]]:
    """``(batch, batch_idx)`` from the training loaders, starting over when they run out.

    Args:
        iterables: `trainer.train_dataloader` (a loader, or a dict / list of them).
        max_restarts: how many passes at most; an empty loader ends at once.
    """
    for _ in range(max_restarts):
        loader = _combined_loader(iterables)
        count = 0
        for batch, batch_idx, _ in loader:
            count += 1
            yield batch, batch_idx
        if count == 0:
            return
