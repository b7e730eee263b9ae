"""The schedule callbacks' writer of rates into an optimizer's param groups: ``lr``, ``momentum``, ``betas[0]``.

:class:`GroupWriter` makes the schedule callbacks' writes. It holds one optimizer's per-group schedules, evaluates
each distinct schedule once per step (ten groups under one schedule cost one evaluation) and re-links the param-group
dicts only when ``optimizer.param_groups`` is replaced, which is what ``Optimizer.load_state_dict`` (a resume)
does; for the built-in schedules it reads each step's values from a table of the next :data:`TABLE_STEPS` steps
(a row per distinct schedule), the same floats a call gives, worked out in one go. Every value goes in as
:func:`lightning_clr._param_groups.write_value` writes it (a float entry replaced, a tensor entry filled in place,
never read back), the primitive the LR range test's sweep uses too.

Under Lightning's clock the writes of the steady state (every group still holding the floats written last) are
made by :class:`~lightning_clr.callbacks.hot_path.HotPath`, from this writer's table, in one tight loop on the
hot path; :meth:`GroupWriter.write` records that state for it and makes every other write.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from lightning_clr._param_groups import write_value
from lightning_clr.schedules import (
    ConstantSchedule,
    CosineRestartsSchedule,
    CyclicSchedule,
    ExponentialRamp,
    LinearRamp,
    OneCycleSchedule,
)

__all__ = ["TABLE_STEPS", "GroupWriter"]

Schedule = Callable[[int], float]


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


#: The built-in schedules, pure functions of the step by contract: their values are worked out ahead, a table
#: at a time (exactly the floats a call would give). Any other callable is called at each step.
_TABULATED: frozenset[type] = frozenset(
    (ConstantSchedule, CosineRestartsSchedule, CyclicSchedule, ExponentialRamp, LinearRamp, OneCycleSchedule))
#: Steps per table (a list of floats per distinct schedule, about 32 KB each). A fill works each schedule's values
#: out with ``ScheduleBase.values``, a phase or cycle at a time (0.1-0.2 µs a value); the same calls one at a time
#: between a Trainer's steps, where Lightning's own work has evicted them from the caches, cost several times more.
TABLE_STEPS = 1024

# What the steady state's tight loop (HotPath.end) writes besides the rate (``_m_mode``): nothing, ``momentum``
# or ``betas[0]``.
_NONE, _MOMENTUM, _BETAS = 0, 1, 2
_MODES = {None: _NONE, "momentum": _MOMENTUM, "betas": _BETAS}


class GroupWriter:
    """Writes one optimizer's per-group schedules into its param groups.

    Args:
        optimizer: the torch optimizer.
        lr: one learning-rate schedule per param group.
        momentum: one momentum schedule (or ``None``) per param group.
        momentum_keys: per group, ``"momentum"``, ``"betas"`` or ``None`` (no momentum is written).

    The learning rate written is ``lr[i](step) * scale``; the momentum is not scaled.

    When every schedule is a built-in one, :meth:`write` reads the values from a table of the next
    :data:`TABLE_STEPS` steps (a row per distinct schedule), filled when a step falls outside it or the scale
    changes; the floats are the ones a call gives (``schedule(step) * scale``), so the rates are bit-identical
    to evaluating at each step. Any other callable is called at each step.

    The usual case (a built-in schedule for every group, one momentum schedule or none, float entries) has a
    steady state: after a write, every group holds the same float (``_written_one``, and ``_written_m`` for the
    momentum). :class:`~lightning_clr.callbacks.hot_path.HotPath` reads it, with the table
    (``_table_start``, ``_table_scale``, ``_table_lr``, ``_table_m``) and the linked groups (``_linked``,
    ``_params``), and replaces those floats itself while nothing else has set a rate: these attributes are the
    hot path's to read, and ``HotPath.end`` updates ``_written_one``, ``_written_m`` and ``written_step`` as
    :meth:`write` would.
    """

    __slots__ = (
        "_fast",
        "_linked",
        "_lr_index",
        "_lr_unique",
        "_m_index",
        "_m_key",
        "_m_mode",
        "_m_unique",
        "_params",
        "_plan",
        "_table_lr",
        "_table_m",
        "_table_scale",
        "_table_start",
        "_tables_lr",
        "_tables_m",
        "_tabulated",
        "_written_m",
        "_written_one",
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
        # The table: every distinct schedule a built-in one. The steady state: besides, one schedule for every group,
        # and one momentum schedule with one momentum entry in every group (or none).
        self._tabulated = all(type(schedule) in _TABULATED for schedule in (*self._lr_unique, *self._m_unique))
        keys = set(self.momentum_keys)
        self._m_key = next(iter(keys)) if len(keys) == 1 else None
        self._fast = self._tabulated and len(self._lr_unique) == 1 and (
            not self._m_unique or (len(self._m_unique) == 1 and self._m_key is not None))
        self._m_mode = _MODES[self._m_key] if self._fast else _NONE  # what the steady state writes besides the rate
        self._table_start = 0  # the table holds steps start .. start + TABLE_STEPS - 1
        self._table_scale = math.nan  # no table yet
        self._tables_lr: list[list[float]] = []  # a row per distinct lr schedule (times the scale) ...
        self._tables_m: list[list[float]] = []  # ... and per distinct momentum schedule
        self._table_lr: list[float] = []  # the first rows: the steady state's
        self._table_m: list[float] = []
        self._linked: Any = None  # the param_groups list the dicts below belong to
        self._params: list[dict] = []
        self._plan: list[tuple[dict, int, str | None, int]] = []  # per group: dict, lr row, momentum key and row
        #: per group, the object last stored in ``params["lr"]`` (a float, or the tensor filled in place), by the
        #: general path; in the steady state every group holds one float, kept in ``_written_one`` instead
        self.written_lr: list[Any] = [None] * len(self.lr)
        #: the steady state: the float every group's ``lr`` (and momentum or ``betas[0]``) holds since the last
        #: write, where one schedule drives every group and each entry is a float; ``None`` otherwise
        self._written_one: float | None = None
        self._written_m: float | None = None
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
        self._plan = list(zip(self._params, self._lr_index, self.momentum_keys, self._m_index, strict=False))

    def _fill(self, step: int, scale: float) -> int:
        """Works out the values of the :data:`TABLE_STEPS` steps from the multiple of it at or below ``step``
        (the table of :meth:`write`; a long run fills one at every multiple); returns ``step``'s index in it."""
        start = step - step % TABLE_STEPS
        # ScheduleBase.values: the floats of calls, worked out a phase or a cycle at a time
        rows = [schedule.values(TABLE_STEPS, start) for schedule in self._lr_unique]  # type: ignore[attr-defined]
        if scale != 1.0:  # x * 1.0 is x
            rows = [[value * scale for value in row] for row in rows]
        self._tables_lr = rows
        self._tables_m = [schedule.values(TABLE_STEPS, start) for schedule in self._m_unique]  # type: ignore[attr-defined]
        self._table_lr = rows[0]
        self._table_m = self._tables_m[0] if self._tables_m else []
        self._table_start, self._table_scale = start, scale
        return step - start

    def _rows(self, step: int, scale: float) -> tuple[list[list[float]], list[list[float]], int]:
        """Where the values of ``step`` are: per distinct lr schedule (times ``scale``) and per distinct momentum
        schedule a row, and the index into the rows. The table's when every schedule is a built-in one (no list
        is made); else each schedule is called, into rows of one value."""
        if not self._tabulated:
            return [[schedule(step) * scale] for schedule in self._lr_unique], [[m(step)] for m in self._m_unique], 0
        i = step - self._table_start
        if not (0 <= i < TABLE_STEPS and scale == self._table_scale):
            i = self._fill(step, scale)
        return self._tables_lr, self._tables_m, i

    def write(self, step: int, scale: float = 1.0) -> None:
        """Writes the values of optimizer step ``step`` (the learning rates multiplied by ``scale``): one value per
        group, floats replaced, tensors filled in place. Where one schedule drives every group and each entry
        written is a float, it records the steady state (:class:`~lightning_clr.callbacks.hot_path.HotPath` then
        replaces those floats itself, step after step, until anything else sets a rate)."""
        groups = self.optimizer.param_groups
        if groups is not self._linked:  # replaced: Optimizer.load_state_dict (a resume) makes new dicts
            self._relink(groups)
        i = step - self._table_start  # _rows, inline: the own clocks' write path
        if self._tabulated and 0 <= i < TABLE_STEPS and scale == self._table_scale:
            lr_rows, m_rows = self._tables_lr, self._tables_m
        else:
            lr_rows, m_rows, i = self._rows(step, scale)
        written = self.written_lr
        floats = self._fast
        for g, (group, j, key, k) in enumerate(self._plan):
            value = lr_rows[j][i]
            if type(group["lr"]) is float:  # write_value's usual case, without the call
                group["lr"] = written[g] = value
            else:
                written[g] = write_value(group, "lr", value)
                floats = False
            if key is None:
                continue
            if key == "momentum" and type(group["momentum"]) is float:
                group["momentum"] = m_rows[k][i]
            else:
                floats = floats and key == "betas" and type(group["betas"][0]) is float
                write_value(group, key, m_rows[k][i])
        # the steady state (HotPath.end's tight loop): the floats every group holds now
        self._written_one = lr_rows[0][i] if floats else None
        self._written_m = m_rows[0][i] if floats and m_rows else None
        self.written_step = step

    def values(self, step: int, scale: float = 1.0) -> tuple[list[float], list[float | None]]:
        """What :meth:`write` writes for ``step``, per group: the learning rates (times ``scale``) and the momenta
        (``None`` where none is written), the same floats, from the table where there is one (the logging reads
        them here)."""
        lr_rows, m_rows, i = self._rows(step, scale)
        return [lr_rows[j][i] for j in self._lr_index], [m_rows[k][i] if k >= 0 else None for k in self._m_index]

    def is_current(self, step: int) -> bool:
        """Whether the values of ``step`` are in place: written last, into the optimizer's current groups, and
        each group's ``lr`` still the object written (anything else that set a rate replaced it)."""
        if step != self.written_step or self.optimizer.param_groups is not self._linked:
            return False
        lr = self._written_one
        if lr is not None:  # the steady state: this float in every group
            for group in self._params:  # noqa: SIM110 - a loop is faster than all()
                if group["lr"] is not lr:
                    return False
            return True
        for group, written in zip(self._params, self.written_lr, strict=False):  # noqa: SIM110
            if group["lr"] is not written:
                return False
        return True
