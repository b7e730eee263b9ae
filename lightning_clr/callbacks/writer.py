"""The schedule callbacks' writer: one optimizer's per-group schedules into its param groups.

Shaped like timm's ``Scheduler.update_groups``: at a step, :meth:`GroupWriter.write` evaluates each distinct
schedule once (ten groups under one schedule cost one evaluation), writes every group through the one primitive
(:func:`lightning_clr._param_groups.update_groups`: a float replaced, a tensor filled in place) and remembers
what it wrote, so that :meth:`GroupWriter.is_current` can tell whether anything else has set a rate since.
It always writes into ``optimizer.param_groups`` as it is now, so a resume (``Optimizer.load_state_dict``
replaces the group dicts) needs nothing special.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lightning_clr._param_groups import update_groups

__all__ = ["GroupWriter"]

Schedule = Callable[[int], float]


def _distinct(schedules: Sequence[Schedule | None]) -> tuple[list[Schedule], list[int]]:
    """The distinct schedules (equal frozen dataclasses count once) and, per group, the index of its schedule
    among them (-1 for ``None``)."""
    unique: list[Schedule] = []
    index: list[int] = []
    for schedule in schedules:
        if schedule is None:
            index.append(-1)
            continue
        for i, other in enumerate(unique):
            if other is schedule or _equal(other, schedule):
                index.append(i)
                break
        else:
            index.append(len(unique))
            unique.append(schedule)
    return unique, index


def _equal(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # an exotic __eq__: treat as distinct
        return False


class GroupWriter:
    """Writes one optimizer's per-group schedules into its param groups.

    The learning rate of group ``i`` at step ``t`` is ``lr[i](t) * scale``; its momentum (``momentum``, or
    ``betas[0]`` when ``momentum_key`` is ``"betas"``) is ``momentum[i](t)``, not scaled.

    Args:
        optimizer: the torch optimizer.
        lr: one learning-rate schedule per param group.
        momentum: one momentum schedule (or `None`: not written) per param group.
        momentum_key: the param-group entry the momentum goes into (`"momentum"` or `"betas"`), or `None`
            (no momentum is written).

    Attributes:
        written_step: the step whose values were written last (-1: none yet, or made stale by :meth:`invalidate`).
    """

    def __init__(self, optimizer: Any, lr: Sequence[Schedule], momentum: Sequence[Schedule | None],
                 momentum_key: str | None) -> None:
        self.optimizer = optimizer
        self.lr = list(lr)
        self.momentum = [m if momentum_key is not None else None for m in momentum]
        self.momentum_key = momentum_key if any(m is not None for m in self.momentum) else None
        self._lr_unique, self._lr_index = _distinct(self.lr)
        self._m_unique, self._m_index = _distinct(self.momentum)
        # groups added to the optimizer after the schedules were built: left alone
        self._spare: list[float | None] = [None] * (len(optimizer.param_groups) - len(self.lr))
        self._written: list[Any] = []  # per group, the object stored under "lr" by the last write
        self.written_step = -1

    def values(self, step: int, scale: float = 1.0) -> tuple[list[float], list[float | None]]:
        """The values of ``step``, per group: the learning rates (times ``scale``) and the momenta (``None`` where
        none is written). Each distinct schedule is evaluated once."""
        # Plain loops, no comprehensions: this runs at every step and stays at a few Python calls whatever the
        # number of groups (a comprehension is a call of its own before Python 3.12).
        unique = []
        for schedule in self._lr_unique:
            unique.append(schedule(step) * scale)  # x * 1.0 is x: an unscaled rate is the schedule's float
        lrs = []
        for i in self._lr_index:
            lrs.append(unique[i])
        momenta: list[float | None] = []
        if self.momentum_key is None:
            momenta += [None] * len(lrs)
            return lrs, momenta
        moments = []
        for schedule in self._m_unique:
            moments.append(schedule(step))
        for i in self._m_index:
            momenta.append(moments[i] if i >= 0 else None)
        return lrs, momenta

    def write(self, step: int, scale: float = 1.0) -> None:
        """Writes the values of optimizer step ``step`` into the optimizer's param groups."""
        lrs, momenta = self.values(step, scale)
        self._written = update_groups(self.optimizer, "lr", [*lrs, *self._spare])
        if self.momentum_key is not None:
            update_groups(self.optimizer, self.momentum_key, [*momenta, *self._spare])
        self.written_step = step

    def is_current(self, step: int) -> bool:
        """Whether the values of ``step`` are in place: written last, and each group's ``lr`` still the object
        written (anything else that set a rate, a resume's ``load_state_dict`` included, replaced it)."""
        if step != self.written_step:
            return False
        for group, written in zip(self.optimizer.param_groups, self._written, strict=False):
            if written is not None and group["lr"] is not written:
                return False
        return True

    def invalidate(self) -> None:
        """Marks the values in place as stale (the scale changed): the next check writes again."""
        self.written_step = -1
