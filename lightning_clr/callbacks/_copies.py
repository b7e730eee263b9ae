"""Host copies of nested state (``state_dict`` trees) for :class:`~lightning_clr.DivergenceGuard`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["all_finite", "kept_copies", "map_tensors", "restore_copy", "take_copy", "to_host"]


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


def take_copy(module: Any, optimizers: list[Any]) -> dict[str, Any]:
    """Host copies of ``module``'s and each optimizer's ``state_dict``: ``{"model": ..., "optimizers": [...]}``."""
    return {"model": map_tensors(module.state_dict(), to_host),
            "optimizers": [map_tensors(o.state_dict(), to_host) for o in optimizers]}


def restore_copy(copy: dict[str, Any], module: Any, optimizers: list[Any]) -> None:
    """Loads a :func:`take_copy` back into ``module`` and ``optimizers``, from clones (torch's
    ``Optimizer.load_state_dict`` keeps same-device tensors as they are, and the live state would then overwrite
    the copy). The optimizers' hyperparameters (rate, momentum, ...) stay those they have now."""
    module.load_state_dict(map_tensors(copy["model"], torch.Tensor.clone))
    for optimizer, saved in zip(optimizers, copy["optimizers"], strict=True):
        hyper = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        optimizer.load_state_dict(map_tensors(saved, torch.Tensor.clone))
        for group, values in zip(optimizer.param_groups, hyper, strict=True):
            group.update(values)


def kept_copies(state_dict: dict[str, Any]) -> list[dict[str, Any]]:
    """The kept copies in a guard's checkpoint state, oldest first, each with its ``"step"``; a version-1 or
    version-2 state held one copy under ``"kept"`` with its step beside it, under ``"kept_step"``."""
    kept = state_dict.get("kept")
    if isinstance(kept, dict):
        return [{**kept, "step": state_dict.get("kept_step")}]
    return list(kept or [])
