"""``SchedulePreviewLogger``: logs a figure of the planned schedules to TensorBoard when training starts.

An opt-in callback, separate from the schedule callbacks so that they stay free of matplotlib and of any
work beyond writing the rate: it runs once, at train start, and never on the per-step path.
"""

from __future__ import annotations

from typing import Any, Optional

from typing_extensions import override

from lightning_clr._checks import check_int
from lightning_clr._compat import CallbackBase
from lightning_clr._trainer import steps_per_epoch, total_steps
from lightning_clr._warnings import warn
from lightning_clr.callbacks.base import ScheduleCallback

__all__ = ["SchedulePreviewLogger"]


class SchedulePreviewLogger(CallbackBase):
    """Draws the schedules of the Trainer's lightning_clr callbacks, as built for this fit, and logs the figure.

    The figure (one panel per driven optimizer: the rate, the momentum where it cycles, the cycle ends) goes
    to every logger whose ``experiment`` has ``add_figure`` (``TensorBoardLogger``), under ``tag``, on rank
    zero. It shows the real values, after lengths in epochs or percent were resolved and an LR range test
    (``"auto"`` bounds) ran. Without such a logger nothing is drawn.

    Example::

        trainer = Trainer(max_epochs=10, logger=TensorBoardLogger("runs"),
                          callbacks=[CyclicLR(1e-3, 0.1, step_size_up="1 epochs"), SchedulePreviewLogger()])

    Args:
        steps: how many optimizer steps to draw; `None` draws the whole fit
            (`trainer.estimated_stepping_batches`).
        tag: the figure's name in TensorBoard.

    Raises:
        ValueError: if `steps` is not `None` or a positive int.
    """

    def __init__(self, steps: Optional[int] = None, tag: str = "lr-schedule") -> None:  # noqa: UP045
        super().__init__()
        check_int(steps, "steps", 1, "optimizer steps", allow_none=True)
        self.steps = steps
        self.tag = tag
        self._pending = False

    @override
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._pending = True
        self._try_log(trainer)

    @override
    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self._pending:  # a schedule built at train start after this callback's own hook ("auto" bounds)
            self._try_log(trainer)

    def _steps(self, trainer: Any) -> int | None:
        return self.steps if self.steps is not None else total_steps(trainer)

    def _try_log(self, trainer: Any) -> None:
        if not trainer.is_global_zero:
            self._pending = False
            return
        writers = [lg.experiment for lg in trainer.loggers if callable(getattr(lg.experiment, "add_figure", None))]
        callbacks = [cb for cb in trainer.callbacks if isinstance(cb, ScheduleCallback)]
        if not writers or not callbacks:
            self._pending = False
            return
        previews = []
        steps = self._steps(trainer)
        if steps is None:
            self._pending = False
            warn("SchedulePreviewLogger: the fit's length is unknown; pass steps=N to draw N steps.")
            return
        from lightning_clr.preview import preview_schedule

        for callback in callbacks:
            for index in range(len(trainer.optimizers)):
                if not callback.drives(index):
                    continue
                lr = callback.step_schedule(index)
                if lr is None:
                    return  # not built yet: try again at the first batch
                name = type(callback).__name__ + (f" (optimizer {index})" if len(trainer.optimizers) > 1 else "")
                previews.append(preview_schedule(lr, steps, momentum=callback.step_momentum_schedule(index),
                                                 name=name, steps_per_epoch=steps_per_epoch(trainer)))
        self._pending = False
        if not previews:
            return
        from lightning_clr.plotting import plot_previews

        figure = plot_previews(previews)
        for writer in writers:
            writer.add_figure(self.tag, figure, global_step=trainer.global_step)
