"""The one writer of rates into an optimizer's param groups: ``lr``, ``momentum`` or Adam's ``betas[0]``.

Following timm's ``Scheduler.update_groups``, every value lightning_clr sets in an optimizer goes through here:

* :func:`write_value` writes one value into one param group. A float (or int) entry is replaced; a tensor
  entry (``Adam(lr=torch.tensor(...))``, capturable or compiled optimizers) is filled in place, never
  read back, so a device tensor costs no host sync.
* :func:`update_groups` writes one value, or one value per group, into every group of an optimizer: the
  LR range test's sweep uses it (``update_groups(optimizer, "lr", rate)``).
* :class:`GroupWriter` is the schedule callbacks' hot path: it holds one optimizer's per-group schedules,
  evaluates each distinct schedule once per step (ten groups under one schedule cost one evaluation) and
  re-links the param-group dicts only when ``optimizer.param_groups`` is replaced, which is what
  ``Optimizer.load_state_dict`` (a resume) does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor

__all__ = ["MOMENTUM_KEYS", "GroupWriter", "momentum_key", "update_groups", "write_value"]

Schedule = Callable[[int], float]
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


def _distinct(schedules: Sequence[Schedule | None]) -> tuple[list[Schedule], list[int]]:
    """The distinct schedules (equal ones, e.g. equal frozen dataclasses, evaluated once) and, per group,
    the index of its schedule among them (-1 for ``None``)."""
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
    """Writes one optimizer's per-group schedules into its param groups: the callbacks' hot path.

    Args:
        optimizer: the torch optimizer.
        lr: one learning-rate schedule per param group.
        momentum: one momentum schedule (or ``None``) per param group.
        momentum_keys: per group, ``"momentum"``, ``"betas"`` or ``None`` (no momentum is written).

    The learning rate written is ``lr[i](step) * scale``; the momentum is not scaled.
    """

    __slots__ = (
        "_linked",
        "_lr_index",
        "_lr_single",
        "_lr_unique",
        "_m_index",
        "_m_single",
        "_m_unique",
        "_params",
        "lr",
        "momentum",
        "momentum_keys",
        "optimizer",
        "written_lr",
        "written_step",
    )

    def __init__(self, optimizer: Any, lr: Sequence[Schedule], momentum: Sequence[Schedule | None],
                 momentum_keys: Sequence[str | None]) -> None:
        self.optimizer = optimizer
        self.lr = list(lr)
        self.momentum = [m if k is not None else None for m, k in zip(momentum, momentum_keys, strict=False)]
        self.momentum_keys = [k if m is not None else None for m, k in zip(momentum, momentum_keys, strict=False)]
        self._lr_unique, self._lr_index = _distinct(self.lr)
        self._m_unique, self._m_index = _distinct(self.momentum)
        # The usual case, one schedule for every group (and one momentum schedule, or none): no list per step.
        self._lr_single = self._lr_unique[0] if len(self._lr_unique) == 1 else None
        self._m_single = self._m_unique[0] if len(self._m_unique) == 1 else None
        self._linked: Any = None  # the param_groups list the dicts below belong to
        self._params: list[dict] = []
        #: per group, the object last stored in ``params["lr"]`` (a float, or the tensor filled in place)
        self.written_lr: list[Any] = [None] * len(self.lr)
        #: the step whose values were written last (-1: none, or stale)
        self.written_step = -1

    @property
    def params(self) -> list[dict]:
        """The param-group dicts written to (the optimizer's current ones)."""
        groups = self.optimizer.param_groups
        if groups is not self._linked:
            self._relink(groups)
        return self._params

    def _relink(self, groups: Any) -> None:
        self._linked = groups
        self._params = list(groups[: len(self.lr)])

    def write(self, step: int, scale: float = 1.0) -> None:
        """Writes the values of optimizer step ``step`` (the learning rates multiplied by ``scale``)."""
        groups = self.optimizer.param_groups
        if groups is not self._linked:  # replaced: Optimizer.load_state_dict (a resume) makes new dicts
            self._relink(groups)
        params = self._params
        written = self.written_lr
        single = self._lr_single
        if single is not None:
            lr = single(step) * scale
            for i, group in enumerate(params):
                current = group["lr"]  # write_value(group, "lr", lr), inlined: this runs every step
                if type(current) is float or not isinstance(current, Tensor):  # isinstance(x, Tensor) is slow
                    group["lr"] = written[i] = lr
                else:
                    current.fill_(lr)
                    written[i] = current
        else:
            lrs = [schedule(step) * scale for schedule in self._lr_unique]
            for i, group in enumerate(params):
                written[i] = write_value(group, "lr", lrs[self._lr_index[i]])
        m_single = self._m_single
        if m_single is not None:
            momentum = m_single(step)
            for group, key in zip(params, self.momentum_keys, strict=False):
                if key == "momentum":
                    current = group["momentum"]
                    if type(current) is float or not isinstance(current, Tensor):
                        group["momentum"] = momentum
                    else:
                        current.fill_(momentum)
                elif key is not None:
                    write_value(group, key, momentum)
        elif self._m_unique:
            momenta = [schedule(step) for schedule in self._m_unique]
            for group, key, j in zip(params, self.momentum_keys, self._m_index, strict=False):
                if key is not None:
                    write_value(group, key, momenta[j])
        self.written_step = step

    def is_current(self, step: int) -> bool:
        """Whether the values of ``step`` are in place: written last, into the optimizer's current groups, and
        each group's ``lr`` still the object written (anything else that set a rate replaced it)."""
        if step != self.written_step or self.optimizer.param_groups is not self._linked:
            return False
        for group, written in zip(self._params, self.written_lr, strict=False):  # noqa: SIM110 - a loop is faster than all()
            if group["lr"] is not written:
                return False
        return True
