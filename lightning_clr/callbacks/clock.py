"""The optimizer-step clock: which step's values an optimizer's next update uses.

One :class:`StepClock` per driven optimizer. It knows nothing of schedules or param groups: it counts, and
tells the callback which step's values to write and when.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch

__all__ = ["ClockMode", "StepClock", "remove_hooks"]

ClockMode = Literal["global_step", "updates", "attempts"]


def _eager(hook: Callable[..., None]) -> Callable[..., None]:
    """Runs an optimizer step hook outside ``torch.compile``: traced, its step counter would become a guard
    and every step would recompile a compiled ``optimizer.step()``."""
    disable = getattr(getattr(torch, "compiler", None), "disable", None)
    return disable(hook) if disable is not None else hook


class StepClock:
    """The step count of one optimizer, in one of three modes.

    ==================  =============================================  ============================================
    mode                when                                           the count
    ==================  =============================================  ============================================
    ``"global_step"``   automatic optimization,                        ``trainer.global_step`` (Lightning's count
                        ``count_skipped_steps=True`` (the default)     of optimizer steps, restored on resume; a
                                                                       step the GradScaler skips still counts)
    ``"updates"``       ``count_skipped_steps=False`` (automatic or    ``count``: real updates only, advanced by
                        manual)                                        torch's post-step hook, which a skipped
                                                                       step never runs
    ``"attempts"``      manual optimization,                           ``count``: each optimizer's own attempted
                        ``count_skipped_steps=True``                   ``step()`` calls, skipped ones included;
                                                                       closure re-evaluations (LBFGS) count once
    ==================  =============================================  ============================================

    The own count (``"updates"``, ``"attempts"``) is saved by the callback and restored on resume. Its
    events: ``before`` is Lightning's ``on_before_optimizer_step`` (it follows the closure: under plain
    precision inside torch's step, under AMP before ``GradScaler.step``, several times for LBFGS); ``pre`` and
    ``post`` are torch's step hooks (they run only for an update that happens). The states of ``"attempts"``:
    *idle*; *pending* (counted before ``GradScaler.step``, which may still skip); *in step* (between
    ``pre`` and ``post``), counted or not yet. The values of step ``count`` are written at the moments marked.

    ===========================  ==========  ====================================================  ===================
    state                        event       action                                                next state
    ===========================  ==========  ====================================================  ===================
    idle or pending              ``before``  AMP: write ``count``'s values (``GradScaler.step``    pending
                                             uses them or skips); ``count += 1``
    idle or pending              ``pre``     --                                                    in step (counted if
                                                                                                   it was pending)
    in step, not counted         ``before``  ``count += 1`` (plain precision; LBFGS's first         in step, counted
                                             closure)
    in step, counted             ``before``  -- (an LBFGS re-evaluation)                           in step, counted
    in step, not counted         ``post``    ``count += 1`` (a step with no closure hook); write   idle
    in step, counted             ``post``    write ``count``'s values                              idle
    ===========================  ==========  ====================================================  ===================

    ``"updates"`` has one transition that matters: ``post`` does ``count += 1`` and writes (``pre`` marks
    *in step*, never counted). The step in progress
    (:meth:`now`) is ``count - 1`` while *in step, counted*, else ``count``; in ``"global_step"`` it is
    ``trainer.global_step``, and the callback writes at train start and at the end of every batch that
    stepped (at a batch's start too, if anything replaced a rate since).

    Args:
        mode: see the table.
        count: the own count to start from (a resume, or an earlier fit of the same Trainer).
    """

    __slots__ = ("attempt_pending", "count", "counted_in_step", "in_step", "mode")

    def __init__(self, mode: ClockMode, count: int = 0) -> None:
        self.mode = mode
        self.count = count
        self.in_step = False  # between torch's pre- and post-step hooks
        self.counted_in_step = False  # the step in progress was already counted as an attempt
        self.attempt_pending = False  # counted before GradScaler.step, which may still skip it

    def __repr__(self) -> str:
        return f"StepClock(mode={self.mode!r}, count={self.count})"

    @property
    def own(self) -> bool:
        """Whether the count is this clock's own (saved by the callback), not ``trainer.global_step``."""
        return self.mode != "global_step"

    def now(self, trainer: Any) -> int:
        """The step whose values apply to the optimizer's next (or current) update."""
        if self.mode == "global_step":
            return trainer.global_step
        return self.count - 1 if self.in_step and self.counted_in_step else self.count

    # ------------------------------------------------------------------ events
    def before_optimizer_step(self) -> int | None:
        """Lightning's ``on_before_optimizer_step`` for this optimizer; returns the step whose values must be
        written now (AMP, before ``GradScaler.step``), or ``None``."""
        if self.mode != "attempts":
            return None
        if not self.in_step:
            step = self.count
            self.count += 1
            self.attempt_pending = True
            return step
        if not self.counted_in_step:
            self.counted_in_step = True
            self.count += 1
        return None

    def pre_step(self) -> None:
        """torch's step pre-hook: an update begins."""
        self.in_step, self.counted_in_step, self.attempt_pending = True, self.attempt_pending, False

    def post_step(self) -> int:
        """torch's step post-hook: the update happened; returns the step whose values to write next."""
        if self.mode == "updates" or not self.counted_in_step:
            self.count += 1
        self.in_step = False
        return self.count

    def attach(self, optimizer: torch.optim.Optimizer, write: Callable[[int], None]) -> list[Any]:
        """Registers torch's step hooks (own modes only) on ``optimizer``; ``write(step)`` is called after each
        update. Returns the hook handles (``handle.remove()`` detaches them)."""
        if not self.own:
            return []

        def pre_hook(optimizer: Any, args: Any, kwargs: Any) -> None:
            self.pre_step()

        def post_hook(optimizer: Any, args: Any, kwargs: Any) -> None:
            write(self.post_step())

        return [optimizer.register_step_pre_hook(_eager(pre_hook)),
                optimizer.register_step_post_hook(_eager(post_hook))]


def remove_hooks(handles: list[Any]) -> list[Any]:
    """Removes torch optimizer step hooks (the handles ``register_step_*_hook`` returned); returns an empty list."""
    for handle in handles:
        handle.remove()
    return []
