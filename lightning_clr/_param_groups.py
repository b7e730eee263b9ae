"""Writing one value into an optimizer's param groups: ``lr``, ``momentum`` or Adam's ``betas[0]``.

The primitive under every rate lightning_clr sets (timm's ``Scheduler.update_groups``): the schedule callbacks'
:class:`~lightning_clr.callbacks.writer.GroupWriter` and the LR range test's sweep both write through here.

* :func:`write_value` writes one value into one param group. A float (or int) entry is replaced; a tensor
  entry (``Adam(lr=torch.tensor(...))``, capturable or compiled optimizers) is filled in place, never read
  back, so a device tensor costs no host sync.
* :func:`update_groups` writes one value, or one value per group, into every group of an optimizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

__all__ = ["MOMENTUM_KEYS", "momentum_key", "update_groups", "write_value"]

#: The param-group entries that hold a momentum: SGD's / RMSprop's ``momentum``, Adam's ``betas`` (its first).
MOMENTUM_KEYS: tuple[str, ...] = ("betas", "momentum")


def momentum_key(params: dict) -> str | None:
    """The entry of ``params`` that holds its momentum (``"betas"`` first, as Adam has both), or ``None``."""
    return "betas" if "betas" in params else ("momentum" if "momentum" in params else None)


def write_value(params: dict, key: str, value: float) -> Any:
    """Writes ``value`` into the param group ``params``.

    Args:
        params: one dict of ``optimizer.param_groups``.
        key: ``"lr"``, ``"momentum"`` or ``"betas"`` (then ``value`` replaces ``betas[0]``).
        value: the value, a Python float.

    Returns:
        The object now stored under ``key`` (for ``"betas"``, the first element): the tensor filled in
        place, or ``value``.
    """
    if key == "betas":
        betas = params["betas"]
        first = betas[0]
        if type(first) is not float and isinstance(first, Tensor):
            first.fill_(value)
            return first
        params["betas"] = (value, *betas[1:])
        return value
    current = params[key]
    if type(current) is not float and isinstance(current, Tensor):  # the type test first: isinstance is slow
        current.fill_(value)
        return current
    params[key] = value
    return value


def update_groups(optimizer: Any, key: str, values: float | Sequence[float]) -> None:
    """Writes ``values`` into ``key`` of every param group of ``optimizer`` (timm's ``update_groups``).

    Example::

        update_groups(optimizer, "lr", 1e-3)            # every group
        update_groups(optimizer, "lr", [1e-3, 1e-2])    # one value per group

    Args:
        optimizer: a torch optimizer (anything with ``param_groups``).
        key: ``"lr"``, ``"momentum"`` or ``"betas"`` (its first element).
        values: one float for every group, or a sequence with one per group.

    Raises:
        ValueError: if a sequence's length differs from the number of param groups.
    """
    groups = optimizer.param_groups
    if not isinstance(values, (list, tuple)):
        for params in groups:
            write_value(params, key, values)  # type: ignore[arg-type]
        return
    if len(values) != len(groups):
        raise ValueError(f"Expected one value per param group ({len(groups)}), but got {len(values)}: "
                         f"{list(values)!r}.")
    for params, value in zip(groups, values, strict=False):
        write_value(params, key, value)
