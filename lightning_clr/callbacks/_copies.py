"""Host copies of nested state (``state_dict`` trees) for :class:`~lightning_clr.DivergenceGuard`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["all_finite", "map_tensors", "to_host"]


def map_tensors(obj: Any, fn: Callable[[torch.Tensor], Any]) -> Any:
    """``obj`` with ``fn`` applied to every tensor in it (through dicts, lists and tuples)."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: map_tensors(v, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(map_tensors(v, fn) for v in obj)
    return obj


def to_host(tensor: torch.Tensor) -> torch.Tensor:
    """A detached copy of ``tensor`` in host memory (a copy even if it is there already)."""
    return tensor.detach().to("cpu", copy=True)


def all_finite(obj: Any) -> bool:
    """Whether every floating-point tensor in ``obj`` is finite (read on the host: call it on host copies)."""
    found: list[bool] = []
    map_tensors(obj, lambda t: found.append(not t.is_floating_point() or bool(torch.isfinite(t).all())))
    return all(found)
