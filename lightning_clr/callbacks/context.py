"""What a schedule callback learns and checks at fit start, before it builds its schedules.

:class:`FitContext` carries the run's size to ``_schedules_for``; :func:`per_group` spreads a value over
param groups; the checks refuse set-ups in which two things would set one optimizer's rate, saying what to
do. Nothing here runs on the per-step path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from lightning_clr._trainer import unwrap_optimizer
from lightning_clr._warnings import warn
from lightning_clr.lengths import Length

__all__ = [
    "FitContext",
    "GroupSchedules",
    "OptimizerIndices",
    "check_no_scheduler_conflict",
    "check_no_sibling_conflict",
    "driven_indices",
    "find_range_test",
    "per_group",
]

OptimizerIndices = Union[int, list[int], None]  # noqa: UP007 - LightningCLI shows this form
#: Per param group, ``(lr_schedule, momentum_schedule_or_None)``.
GroupSchedules = list[tuple[Callable[[int], float], Callable[[int], float] | None]]


@dataclass
class FitContext:
    """What a callback knows about the fit when it builds its schedules.

    A resumed fit whose length differs from the checkpoint's run (another ``max_steps`` or ``max_epochs``) keeps
    the past exact: a length given as a share of the run (``"30%"``, ``total_steps=None``) resolves against the
    checkpoint's run (``planned_total``), as it did when those steps were taken, and is listed in ``kept`` (the
    callback says so in one warning). Lengths in steps or epochs do not depend on the run's length. A schedule
    that is re-planned for the new length on purpose (warmup-stable-decay's cool-down) asks for the new one
    (``replan=True``).

    Attributes:
        steps_per_epoch: optimizer steps in one training epoch (per rank), or ``None`` if unknown.
        total_steps: optimizer steps in the whole fit (``trainer.estimated_stepping_batches``), or ``None``.
        owner: the callback, as named in warnings.
        planned_total: on resume, the run length the checkpoint's schedules were built for (``None``: a new fit,
            or a checkpoint that does not say).
        resumed_step: on resume, the step count restored from the checkpoint (``None``: a new fit).
        kept: the arguments resolved against ``planned_total`` rather than the new run's length.
    """

    steps_per_epoch: float | None
    total_steps: float | None
    trainer: Any = field(default=None, repr=False)
    pl_module: Any = field(default=None, repr=False)
    owner: str = ""
    planned_total: float | None = None
    resumed_step: int | None = None
    kept: list[str] = field(default_factory=list)

    @property
    def run_changed(self) -> bool:
        """Whether this is a resume into a run of another length than the checkpoint's."""
        return self.planned_total is not None and self.planned_total != self.total_steps

    def whole_run(self, name: str) -> float | None:
        """The run's length in optimizer steps for an argument that means "the whole fit" (``None`` if unknown):
        on a resume into a run of another length, the checkpoint's run (recorded in ``kept``)."""
        if self.run_changed:
            self.kept.append(name)
            return self.planned_total
        return self.total_steps

    def resolve(self, length: Length, name: str | None = None, spec: Any = None, replan: bool = False) -> int:
        """``length`` in optimizer steps. In a fit (a Trainer is known, not ``fast_dev_run``), a length longer
        than the whole fit warns, naming the argument ``name`` and its value ``spec``. A share of the run resolves
        against the checkpoint's run on a resume into a run of another length, unless ``replan``."""
        total = self.total_steps
        if length.unit == "percent" and self.run_changed and not replan:
            total = self.planned_total
            self.kept.append(f"{name}={str(length) if spec is None else repr(spec)}" if name else str(length))
        steps = length.resolve(self.steps_per_epoch, total, where="fit" if self.trainer is not None else "preview")
        debug_run = bool(getattr(self.trainer, "fast_dev_run", False))  # a smoke run is short on purpose
        if name is not None and self.trainer is not None and total is not None and steps > total and not debug_run:
            shown = str(length) if spec is None else repr(spec)
            warn(
                f"{self.owner or 'lightning_clr'}: {name}={shown} resolves to {steps} optimizer steps, longer than "
                f"the whole fit ({int(total)} steps), so the schedule never gets past it. Shorten {name} or "
                "lengthen the fit (max_epochs / max_steps)."
            )
        return steps


def per_group(value: Any, num_groups: int, name: str, optimizer_name: str) -> list[Any]:
    """``value`` once per param group: a list of ``num_groups`` values is taken as it is, one value repeated.

    Raises:
        ValueError: if `value` is a list of another length.
    """
    if isinstance(value, (list, tuple)):
        if len(value) != num_groups:
            raise ValueError(
                f"Expected {name} to have one value per param group of {optimizer_name}, which has {num_groups} "
                f"param group(s), but got {len(value)} values: {list(value)!r}. Pass a single value to use it for "
                "every group."
            )
        return list(value)
    return [value] * num_groups


def driven_indices(owner: str, requested: list[int] | None, count: int) -> list[int]:
    """The indices of the optimizers to drive: ``requested``, or all ``count``.

    Raises:
        ValueError: if there is no optimizer, or an index is out of range.
    """
    if count == 0:
        raise ValueError(f"{owner} found no optimizer: configure_optimizers returned none.")
    indices = list(range(count)) if requested is None else requested
    missing = [i for i in indices if i >= count]
    if missing:
        raise ValueError(
            f"{owner}(optimizers={requested}) names optimizer indices {missing}, but "
            f"configure_optimizers returned {count} optimizer(s) (valid indices 0..{count - 1})."
        )
    return indices


def check_no_sibling_conflict(owner: str, mine: list[int] | None,
                              others: Sequence[tuple[str, list[int] | None]]) -> None:
    """Refuses two schedule callbacks that drive one optimizer.

    Args:
        owner: this callback's class name.
        mine: its `optimizers` (`None`: all).
        others: `(class name, optimizers)` of the other schedule callbacks on the Trainer.

    Raises:
        ValueError: naming both and `optimizers=[...]` as the fix.
    """
    ours = None if mine is None else set(mine)
    for name, optimizers in others:
        theirs = None if optimizers is None else set(optimizers)
        if ours is None or theirs is None or ours & theirs:
            raise ValueError(
                f"{owner}(optimizers={mine}) and {name}(optimizers={optimizers}) would both set the learning rate "
                "of the same optimizer. Give each callback its own optimizers=[...] indices, or keep one of them."
            )


def check_no_scheduler_conflict(owner: str, trainer: Any, optimizers: list, indices: list[int]) -> None:
    """Refuses an LR scheduler from ``configure_optimizers`` on an optimizer the callback drives.

    Raises:
        ValueError: naming the scheduler and the two ways out.
    """
    for config in getattr(trainer, "lr_scheduler_configs", None) or []:
        scheduler = config.scheduler
        scheduled = unwrap_optimizer(getattr(scheduler, "optimizer", None))
        for i in indices:
            if scheduled is optimizers[i]:
                raise ValueError(
                    f"configure_optimizers (or LightningCLI's --lr_scheduler) returns the LR scheduler "
                    f"{type(scheduler).__name__} for optimizer {i} ({type(optimizers[i]).__name__}), which "
                    f"{owner} also drives: both would set its learning rate. Return only the "
                    f"optimizer from configure_optimizers and let {owner} schedule it, or pass "
                    f"{owner}(optimizers=[...]) to drive the other optimizers only."
                )


def find_range_test(owner: str, trainer: Any) -> Any:
    """The Trainer's :class:`~lightning_clr.LRRangeTest`, which "auto" bounds come from.

    Raises:
        ValueError: if the Trainer has none.
    """
    from lightning_clr.tuner.range_test import LRRangeTest

    tests = [cb for cb in trainer.callbacks if isinstance(cb, LRRangeTest)]
    if not tests:
        raise ValueError(
            f"{owner} was given 'auto' bounds, which come from an LR range test, but the "
            "Trainer has no lightning_clr.LRRangeTest callback. Add LRRangeTest() to the Trainer's "
            "callbacks, or give the bounds as numbers."
        )
    return tests[0]
