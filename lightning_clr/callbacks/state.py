"""The state side of a schedule callback: its identity in a checkpoint, the plain-dict state saved there,
and read-only access to what it built (for :class:`~lightning_clr.SnapshotCheckpoint`, the preview logger
and the guard). The hooks that drive the optimizers are in :mod:`~lightning_clr.callbacks.base`.

The saved state (format version 1): ``version``, ``fingerprint`` (a hash of the arguments), ``arguments``
(as JSON values), ``step_counts`` (optimizer index -> the clock's count) and ``rate_scale``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from typing_extensions import override

from lightning_clr._compat import CallbackBase
from lightning_clr._warnings import warn
from lightning_clr.callbacks.clock import StepClock
from lightning_clr.callbacks.writer import GroupWriter

__all__ = ["ScheduleState"]

_STATE_VERSION = 1


@dataclass
class _Driven:
    """One optimizer this callback drives: its clock, and (once built) the writer of its groups."""

    index: int
    optimizer: Any
    clock: StepClock
    writer: GroupWriter | None = None
    end: int | None = None  # first step past the end of the schedule, if it ends



class ScheduleState(CallbackBase):
    """Identity, checkpoint state and read-only accessors of :class:`~lightning_clr.ScheduleCallback`."""

    optimizers: list[int] | None
    _driven: list[_Driven]
    _trainer: Any
    _use_global_step: bool
    _restored_counts: dict[int, int]
    _loaded_from_checkpoint: bool
    _rate_scale: float

    def _arguments(self) -> dict[str, Any]:
        """The constructor's arguments as plain values, for the checkpoint fingerprint."""
        raise NotImplementedError

    # ------------------------------------------------------------------ identity and checkpoints
    @property
    @override
    def state_key(self) -> str:
        """The key of this callback's state in a checkpoint: the class name, with ``optimizers`` if given.
        Two callbacks of one class on one Trainer need different ``optimizers=[...]``."""
        if self.optimizers is None:
            return self.__class__.__qualname__
        return self._generate_state_key(optimizers=self.optimizers)

    def fingerprint(self) -> str:
        """A short hash of the arguments: a resumed run compares it with the checkpoint's."""
        arguments = {"class": type(self).__qualname__, **self._arguments()}
        text = json.dumps(arguments, sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _plain_arguments(self) -> dict[str, Any]:
        """The arguments as JSON values (non-JSON ones by ``repr``), as saved in and compared with a checkpoint."""
        return json.loads(json.dumps(self._arguments(), default=repr))

    @override
    def state_dict(self) -> dict[str, Any]:
        if self._driven and self._use_global_step and self._trainer is not None:
            # Lightning's clock drives every optimizer: save it, so a resume that switches to the own clock
            # (count_skipped_steps=False) continues from the same step.
            counts = {d.index: int(self._trainer.global_step) for d in self._driven}
        elif self._driven:
            counts = {d.index: d.clock.count for d in self._driven}
        else:
            counts = dict(self._restored_counts)
        return {
            "version": _STATE_VERSION,
            "fingerprint": self.fingerprint(),
            "arguments": self._plain_arguments(),
            "step_counts": {str(k): v for k, v in counts.items()},
            "rate_scale": self._rate_scale,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored_counts = {int(k): int(v) for k, v in state_dict.get("step_counts", {}).items()}
        self._loaded_from_checkpoint = True
        self._rate_scale = float(state_dict.get("rate_scale", 1.0))
        fingerprint = state_dict.get("fingerprint")
        if fingerprint is not None and fingerprint != self.fingerprint():
            saved = state_dict.get("arguments", {})
            changed = {k: (saved.get(k), v) for k, v in self._plain_arguments().items() if saved.get(k) != v}
            warn(
                f"{type(self).__name__} is resuming from a checkpoint saved with other arguments "
                f"(changed, as (saved, now): {changed}). The schedule continues from the restored step with "
                "the new arguments."
            )

    # ------------------------------------------------------------------ scaling the rates
    @property
    def rate_scale(self) -> float:
        """The factor every learning rate this callback writes is multiplied by: 1.0 unless lowered (e.g. by
        :class:`~lightning_clr.DivergenceGuard`). Saved in the checkpoint, so a resumed run writes the same rates."""
        return self._rate_scale

    # ------------------------------------------------------------------ read-only access for other callbacks
    def drives(self, optimizer_index: int) -> bool:
        """Whether this callback schedules optimizer ``optimizer_index`` of the Trainer."""
        return self.optimizers is None or optimizer_index in self.optimizers

    def _built(self, optimizer_index: int, group: int) -> GroupWriter | None:
        for driven in self._driven:
            if driven.index == optimizer_index and driven.writer is not None and len(driven.writer.lr) > group:
                return driven.writer
        return None

    def step_schedule(self, optimizer_index: int = 0, group: int = 0) -> Callable[[int], float] | None:
        """The learning-rate schedule built for param group ``group`` of optimizer ``optimizer_index`` in
        the current fit, or ``None`` before it is built (at fit start, or at train start with "auto" bounds)."""
        writer = self._built(optimizer_index, group)
        return None if writer is None else writer.lr[group]

    def step_momentum_schedule(self, optimizer_index: int = 0, group: int = 0) -> Callable[[int], float] | None:
        """The momentum schedule of that param group, or ``None`` (not built yet, or the momentum is not cycled)."""
        writer = self._built(optimizer_index, group)
        return None if writer is None else writer.momentum[group]

    def current_step(self, trainer: Any, optimizer_index: int = 0) -> int:
        """The count of optimizer steps of ``optimizer_index`` taken so far: the step the schedule writes next.

        Raises:
            ValueError: if this callback does not drive that optimizer in the current fit.
        """
        for driven in self._driven:
            if driven.index == optimizer_index:
                return driven.clock.now(trainer)
        raise ValueError(f"{type(self).__name__} does not drive optimizer {optimizer_index} in the current fit "
                         f"(it drives {[d.index for d in self._driven]}).")
