"""``ScheduledLR``: the adapter driven by schedules the user builds."""

from __future__ import annotations

from typing import Any, Union

from lightning_clr.callbacks.base import ScheduleCallback
from lightning_clr.callbacks.context import FitContext, GroupSchedules, OptimizerIndices, per_group
from lightning_clr.schedules import ScheduleBase

__all__ = ["ScheduledLR"]


class ScheduledLR(ScheduleCallback):
    """Drives the learning rate (and optionally the momentum) with schedules you build yourself.

    Any callable ``step -> value`` works; the built-in ones in :mod:`lightning_clr.schedules` (or your own
    frozen dataclass) pickle and can be given from LightningCLI YAML with ``class_path``.

    Example::

        from lightning_clr import ScheduledLR
        from lightning_clr.schedules import CosineRestartsSchedule

        trainer = Trainer(callbacks=[ScheduledLR(CosineRestartsSchedule(peak=0.1, first_cycle=500))])

    Args:
        lr: the learning-rate schedule, or a list with one per param group.
        momentum: the momentum (or Adam `betas[0]`) schedule, a list with one per group, or `None`.
        optimizers: index or list of indices into `trainer.optimizers` of the optimizers to drive; `None`
            drives all of them. Two schedule callbacks on one Trainer need disjoint `optimizers=[...]`.
        count_skipped_steps: whether a step that the AMP GradScaler skips (inf/NaN gradients) advances
            the schedule. `True` follows Lightning's `global_step`; `False` counts real updates only.
        log_momentum: also log the momentum when it is scheduled.
        logging_name: prefix of the logged names, e.g. `"lr-clr"` gives `lr-clr-SGD`.

    Raises:
        ValueError: if `lr` or `momentum` is not callable (or a list of callables).
    """

    def __init__(
        self,
        lr: Union[ScheduleBase, list[ScheduleBase]],  # noqa: UP007 - LightningCLI shows this form
        momentum: Union[ScheduleBase, list[ScheduleBase], None] = None,  # noqa: UP007
        optimizers: OptimizerIndices = None,
        count_skipped_steps: bool = True,
        log_momentum: bool = True,
        logging_name: str = "lr-clr",
    ) -> None:
        super().__init__(optimizers, count_skipped_steps, log_momentum, logging_name)
        for name, value in (("lr", lr), ("momentum", momentum)):
            items = value if isinstance(value, (list, tuple)) else [value]
            if any(not callable(s) for s in items if not (name == "momentum" and s is None)):
                raise ValueError(f"Expected {name} to be a schedule (a callable step -> value) or a list of them, "
                                 f"but got {value!r}.")
        self.lr = lr
        self.momentum = momentum

    def _schedules_for(self, context: FitContext, num_groups: int, optimizer_name: str) -> GroupSchedules:
        lrs = per_group(self.lr, num_groups, "lr", optimizer_name)
        momenta = per_group(self.momentum, num_groups, "momentum", optimizer_name)
        return list(zip(lrs, momenta, strict=False))

    def _arguments(self) -> dict[str, Any]:
        # the schedules as their repr text, as every checkpoint of this class saved them
        return {**super()._arguments(), "lr": repr(self.lr), "momentum": repr(self.momentum)}
