"""Writing values into an optimizer's param groups: ``lr``, ``momentum`` or Adam's ``betas[0]``.

:func:`update_groups` is the primitive under every rate lightning_clr sets (timm's ``Scheduler.update_groups``):
the schedule callbacks' :class:`~lightning_clr.callbacks.writer.GroupWriter` and the LR range test's sweep both
write through it. One call writes every group of an optimizer. A float (or int) entry is replaced; a tensor entry
(``Adam(lr=torch.tensor(...))``, capturable or compiled optimizers) is filled in place and never read back, so a
device tensor costs no host sync and a compiled ``optimizer.step()`` sees the same tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

__all__ = ["MOMENTUM_KEYS", "momentum_key", "update_groups"]

#: The param-group entries that hold a momentum: SGD's / RMSprop's ``momentum``, Adam's ``betas`` (its first).
MOMENTUM_KEYS: tuple[str, ...] = ("betas", "momentum")


def momentum_key(params: dict) -> str | None:
    """The entry of ``params`` that holds its momentum (``"betas"`` first, as Adam has both), or ``None``."""
    return "betas" if "betas" in params else ("momentum" if "momentum" in params else None)


def update_groups(optimizer: Any, key: str, values: float | Sequence[float | None]) -> list[Any]:
    """Writes ``values`` into ``key`` of every param group of ``optimizer`` (timm's ``update_groups``).

    Example::

        update_groups(optimizer, "lr", 1e-3)            # every group
        update_groups(optimizer, "lr", [1e-3, 1e-2])    # one value per group
        update_groups(optimizer, "betas", [0.9, None])  # betas[0] of the first group; the second is left alone

    Args:
        optimizer: a torch optimizer (anything with ``param_groups``).
        key: ``"lr"``, ``"momentum"`` or ``"betas"`` (its first element).
        values: one float for every group, or a sequence with one per group (``None`` leaves that group alone).

    Returns:
        Per group, the object now stored under ``key`` (for ``"betas"``, its first element): the value, or the
        tensor filled in place; ``None`` where nothing was written.

    Raises:
        ValueError: if a sequence's length differs from the number of param groups.
    """
    groups = optimizer.param_groups
    if isinstance(values, (list, tuple)):
        if len(values) != len(groups):
            raise ValueError(f"Expected one value per param group ({len(groups)}), but got {len(values)}: "
                             f"{list(values)!r}.")
        per_group: Sequence[float | None] = values
    else:
        per_group = [values] * len(groups)  # type: ignore[list-item]
    stored: list[Any] = []
    for params, value in zip(groups, per_group):  # noqa: B905 - the lengths are checked above
        if value is None:
            stored.append(None)
            continue
        current = params["betas"][0] if key == "betas" else params[key]
        if type(current) is not float and isinstance(current, Tensor):  # the type test first: the usual case
            current.fill_(value)
            stored.append(current)
            continue
        if key == "betas":
            params["betas"] = (value, *params["betas"][1:])
        else:
            params[key] = value
        stored.append(value)
    return stored
