"""State isolation of the LR range test: everything the sweep changes, copied to the host and put back exactly.

The sweep trains the real model with the real optimizer, so before it runs :func:`isolated` copies the weights
and buffers, the gradients, the train/eval flags, the optimizers' state and param groups (and their step hooks),
the loaders' generators, torchmetrics states, the GradScaler and ``self.log``; the global random states
(torch, CUDA, numpy, Python) are kept by Lightning's ``isolate_rng``. Tensors are copied to the host (CPU), so
the test costs no accelerator memory beyond the sweep itself, and written back in place where the tensor still
exists (Lightning's ``LightningOptimizer`` and LR schedulers hold the very param-group dicts).

Under FSDP2 (Lightning's ``ModelParallelStrategy`` with ``fully_shard``) the parameters, their gradients and the
optimizer's state are DTensors: each rank copies only its own local shards to the host and writes them back into
the same local tensors, with no collective call (a DTensor that no longer exists is rebuilt from the local shard,
its mesh and its placements).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import torch

try:
    from pytorch_lightning.utilities.seed import isolate_rng
except ImportError:  # pragma: no cover - only the unified package installed
    from lightning.pytorch.utilities.seed import isolate_rng

__all__ = ["Snapshot", "isolated", "restore", "take_snapshot"]


try:
    from torch.distributed.tensor import DTensor
except ImportError:  # pragma: no cover - torch without torch.distributed
    DTensor = None  # type: ignore[assignment,misc]


@dataclass(frozen=True)
class _DTensorSpec:
    """How to rebuild a DTensor from its local shard: its mesh, placements, global shape and stride."""

    mesh: Any
    placements: tuple[Any, ...]
    shape: torch.Size
    stride: tuple[int, ...]


@dataclass(frozen=True)
class _HostCopy:
    """A tensor copied to the host (for a DTensor: this rank's local shard), with the device it is put back to
    and, for a DTensor, what rebuilds it."""

    value: torch.Tensor
    device: torch.device
    dtensor: _DTensorSpec | None = None


def _is_dtensor(value: Any) -> TypeGuard[DTensor]:
    return DTensor is not None and isinstance(value, DTensor)


def _local(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor this rank holds: a DTensor's local shard (the very storage, no copy), else the tensor."""
    if _is_dtensor(tensor):
        with torch.no_grad():  # without grad, to_local returns the local tensor itself, not an autograd view
            return tensor.to_local()
    return tensor


def _host_copy(tensor: torch.Tensor) -> _HostCopy:
    if _is_dtensor(tensor):
        shard = _local(tensor)
        spec = _DTensorSpec(tensor.device_mesh, tuple(tensor.placements), tensor.shape, tuple(tensor.stride()))
        return _HostCopy(shard.detach().to("cpu", copy=True), shard.device, spec)
    return _HostCopy(tensor.detach().to("cpu", copy=True), tensor.device)


def _write_back(tensor: torch.Tensor, saved: _HostCopy) -> None:
    """Copies ``saved`` into ``tensor`` in place (into its local shard for a DTensor)."""
    with torch.no_grad():
        _local(tensor).copy_(saved.value)


def _same_layout(current: Any, saved: _HostCopy) -> bool:
    if not isinstance(current, torch.Tensor) or _is_dtensor(current) != (saved.dtensor is not None):
        return False
    shard = _local(current)
    return shard.shape == saved.value.shape and shard.dtype == saved.value.dtype


def _rebuild(saved: _HostCopy) -> torch.Tensor:
    value = saved.value.to(saved.device, copy=True)
    if saved.dtensor is None:
        return value
    spec = saved.dtensor
    return DTensor.from_local(value, spec.mesh, spec.placements, run_check=False, shape=spec.shape,
                              stride=spec.stride)


def _to_host(value: Any) -> Any:
    """``value`` with every tensor (in dicts, lists, tuples) copied to the host; other leaves deep-copied."""
    if isinstance(value, torch.Tensor):
        return _host_copy(value)
    if isinstance(value, dict):
        return {k: _to_host(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_host(v) for v in value)
    return copy.deepcopy(value)


def _from_host(saved: Any, current: Any = None) -> Any:
    """``saved`` back on its device, written into ``current`` where that is a tensor of the same shape and
    dtype (so that holders of ``current`` see the restored values)."""
    if isinstance(saved, _HostCopy):
        if _same_layout(current, saved):
            _write_back(current, saved)
            return current
        return _rebuild(saved)
    if isinstance(saved, dict):
        return {k: _from_host(v, current.get(k) if isinstance(current, dict) else None) for k, v in saved.items()}
    if isinstance(saved, (list, tuple)):
        return type(saved)(_from_host(v) for v in saved)
    return copy.deepcopy(saved)


@dataclass
class Snapshot:
    """Everything the test changes (tensors as host copies), kept to put back exactly."""

    tensors: list[tuple[torch.Tensor, _HostCopy]]
    grads: list[tuple[torch.Tensor, _HostCopy | None]]
    training: list[tuple[torch.nn.Module, bool]]
    optimizers: list[tuple[torch.optim.Optimizer, dict, list[dict], Any, Any]]
    generators: list[tuple[torch.Generator, torch.Tensor]]
    metrics: list[tuple[Any, dict[str, Any]]]
    scaler: Any
    scaler_state: dict | None
    global_step: int
    module_dict: dict[str, Any] = field(default_factory=dict)


def _unique(tensors: Iterator[torch.Tensor]) -> list[torch.Tensor]:
    seen: set[int] = set()
    out = []
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            out.append(t)
    return out


def _loader_generators(iterables: Any) -> list[torch.Generator]:
    """The torch generators of the loaders (their own, their samplers'), which iterating them advances."""
    found: list[torch.Generator] = []
    stack = [iterables]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
            continue
        if isinstance(item, (list, tuple)):
            stack.extend(item)
            continue
        candidates = [getattr(item, "generator", None)]
        for sampler in (getattr(item, "sampler", None), getattr(getattr(item, "batch_sampler", None), "sampler", None)):
            candidates.append(getattr(sampler, "generator", None))
        for gen in candidates:
            if isinstance(gen, torch.Generator) and all(gen is not g for g in found):
                found.append(gen)
    return found


def _metrics(module: torch.nn.Module) -> list[Any]:
    try:
        from torchmetrics import Metric
    except ImportError:  # pragma: no cover - torchmetrics is a dependency of Lightning
        return []
    return [m for m in module.modules() if isinstance(m, Metric)]


def _metric_state(metric: Any) -> dict[str, Any]:
    names = [*getattr(metric, "_defaults", {}), "_update_count", "_computed"]
    return {name: _to_host(getattr(metric, name)) for name in names if hasattr(metric, name)}


def take_snapshot(trainer: Any, pl_module: Any, optimizers: list[torch.optim.Optimizer]) -> Snapshot:
    """Copies what the sweep changes (tensors to the host)."""
    tensors = [(t, _host_copy(t)) for t in _unique(_chain(pl_module))]
    grads = [(p, None if p.grad is None else _to_host(p.grad)) for p in _unique(pl_module.parameters())]
    saved_optimizers = []
    for optimizer in optimizers:
        state = {param: _to_host(value) for param, value in optimizer.state.items()}
        groups = [{k: _to_host(v) for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
        pre = getattr(optimizer, "_optimizer_step_pre_hooks", None)
        post = getattr(optimizer, "_optimizer_step_post_hooks", None)
        saved_optimizers.append((optimizer, state, groups, pre, post))
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    return Snapshot(
        tensors=tensors,
        grads=grads,
        training=[(m, m.training) for m in pl_module.modules()],
        optimizers=saved_optimizers,
        generators=[(g, g.get_state()) for g in _loader_generators(trainer.train_dataloader)],
        metrics=[(m, _metric_state(m)) for m in _metrics(pl_module)],
        scaler=scaler,
        scaler_state=None if scaler is None else copy.deepcopy(scaler.state_dict()),
        global_step=int(trainer.global_step),
        module_dict={name: pl_module.__dict__[name] for name in ("log", "log_dict") if name in pl_module.__dict__},
    )


def _chain(module: torch.nn.Module) -> Iterator[torch.Tensor]:
    yield from module.parameters()
    yield from module.buffers()


def restore(snapshot: Snapshot, trainer: Any, pl_module: Any) -> None:
    """Puts everything in ``snapshot`` back, in place where the objects still exist."""
    with torch.no_grad():
        for tensor, saved in snapshot.tensors:
            _write_back(tensor, saved)
        for param, grad in snapshot.grads:
            param.grad = None if grad is None else _from_host(grad, param.grad)
    for module, training in snapshot.training:
        module.training = training  # per module: train() would recurse into the children
    for optimizer, state, groups, pre, post in snapshot.optimizers:
        # In place: Lightning's LightningOptimizer and LR schedulers hold these very dicts.
        current = dict(optimizer.state)
        optimizer.state.clear()
        optimizer.state.update({param: _from_host(value, current.get(param)) for param, value in state.items()})
        for group, saved_group in zip(optimizer.param_groups, groups, strict=True):
            for key in [k for k in group if k != "params" and k not in saved_group]:
                del group[key]
            for key, value in saved_group.items():
                group[key] = _from_host(value, group.get(key))
        if pre is not None:
            optimizer._optimizer_step_pre_hooks = pre
        if post is not None:
            optimizer._optimizer_step_post_hooks = post
    for metric, state in snapshot.metrics:
        for name, value in state.items():
            setattr(metric, name, _from_host(value))
    if snapshot.scaler is not None and snapshot.scaler_state is not None:
        snapshot.scaler.load_state_dict(snapshot.scaler_state)
    for generator, generator_state in snapshot.generators:
        generator.set_state(generator_state)
    for name in ("log", "log_dict"):
        pl_module.__dict__.pop(name, None)
    pl_module.__dict__.update(snapshot.module_dict)
    if trainer.global_step != snapshot.global_step:  # pragma: no cover - the sweep never steps Lightning's loop
        raise RuntimeError(f"LRRangeTest changed global_step from {snapshot.global_step} to {trainer.global_step}.")


@contextmanager
def isolated(trainer: Any, pl_module: Any, optimizers: list[torch.optim.Optimizer]) -> Iterator[None]:
    """Runs the block, then puts the model, the optimizers, the loaders and the random states back.

    The global random states go through Lightning's ``isolate_rng`` (CUDA's when CUDA is initialised); the rest
    through :func:`take_snapshot` and :func:`restore`, also when the block raises.
    """
    snapshot = take_snapshot(trainer, pl_module, optimizers)
    try:
        with isolate_rng(include_cuda=torch.cuda.is_available() and torch.cuda.is_initialized()):
            yield
    finally:
        restore(snapshot, trainer, pl_module)
